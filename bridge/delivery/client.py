"""The Vibes Event API client: one POST per call, its outcome as a value.

One ``httpx.AsyncClient`` for the process: connections are reused (HTTP
keep-alive) across every event and company key. The Authorization header is
taken from the credentials source on every request, so a refreshed secret is
used from the next request on without rebuilding the client.
"""

from __future__ import annotations

import time

import httpx

from bridge.config.model import TlsSettings
from bridge.delivery.credentials import CredentialsSource
from bridge.delivery.outcomes import Delivered, outcome_of_exception, outcome_of_response
from bridge.delivery.transport import as_httpx_error, build_transport
from bridge.errors import BridgeError
from bridge.vibes.api import API_VERSION_HEADER, JSON_CONTENT_TYPE, events_path


class VibesClient:
    """POSTs event bodies to ``{base_url}/companies/{company_key}/events``.

    ``transport`` replaces the connection layer (tests pass ``httpx.MockTransport``;
    the benchmark compares transports); ``tls`` then does not apply, since TLS
    belongs to the transport.
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        timeout_seconds: float,
        credentials: CredentialsSource,
        tls: TlsSettings | None = None,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._credentials = credentials
        if transport is None:
            transport = build_transport(tls=tls, max_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            headers={API_VERSION_HEADER: api_version, "Content-Type": JSON_CONTENT_TYPE},
            follow_redirects=False,  # a redirect is a misconfigured base_url: retried, then seen
            trust_env=False,  # no proxy or .netrc from the environment changes where events go
        )

    async def post_event(self, company_key: str, body: bytes) -> Delivered | BridgeError:
        """ONE attempt; never raises for HTTP or network trouble: the outcome is returned."""
        headers = {"Authorization": self._credentials.authorization()}
        try:
            response = await self._http.post(
                events_path(company_key), content=body, headers=headers
            )
        except Exception as exc:
            error = as_httpx_error(exc)
            if error is None:
                raise
            return outcome_of_exception(error)
        return outcome_of_response(
            response.status_code, response.headers, response.content, time.time()
        )

    def refresh_credentials(self) -> bool:
        """Re-read ``*_file`` credentials that changed; True when they did."""
        return self._credentials.refresh()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()
