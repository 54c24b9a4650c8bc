"""The Vibes Event API client: one POST per call, its outcome as a value.

One connection pool for the process: connections are reused (HTTP keep-alive)
across every event and company key, except that a company with a TLS client
certificate of its own (``vibes.companies.<key>.tls``) gets a pool of its own,
since the certificate belongs to the connection. The Authorization header is
the company's (``CompanyCredentials.for_company``), taken from its credentials
source on every request, so a refreshed secret is used from the next request
on without rebuilding the client.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping

import httpx

from bridge.bounded_http import NO_COMPRESSION, Answer, as_httpx_error, exchange
from bridge.delivery.credentials import CompanyCredentials, CredentialsSource
from bridge.delivery.outcomes import (
    Outcome,
    outcome_of_exception,
    outcome_of_response,
    timed_out,
)
from bridge.delivery.transport import build_transport
from bridge.vibes.api import (
    API_VERSION_HEADER,
    JSON_CONTENT_TYPE,
    RESPONSE_BODY_LIMIT,
    events_path,
)


class VibesClient:
    """POSTs event bodies to ``{base_url}/companies/{company_key}/events``.

    ``transport`` replaces the connection layer (tests pass ``httpx.MockTransport``;
    the benchmark compares transports); ``tls`` then does not apply, since TLS
    belongs to the transport.

    ``timeout_seconds`` bounds the whole attempt (connect, send, headers and the
    body together); it is also each phase's own httpx timeout. ``body_limit``
    caps how much of an answer is read (``bridge.bounded_http``).

    ``credentials`` is one pair for every company key, or a
    :class:`CompanyCredentials`; ``company_tls`` gives the companies with a TLS
    context of their own (each gets its own connection pool).
    """

    def __init__(
        self,
        *,
        base_url: str,
        api_version: str,
        timeout_seconds: float,
        credentials: CredentialsSource | CompanyCredentials,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        body_limit: int = RESPONSE_BODY_LIMIT,
        company_tls: Mapping[str, ssl.SSLContext] | None = None,
    ) -> None:
        if isinstance(credentials, CredentialsSource):
            credentials = CompanyCredentials(credentials)
        self._credentials = credentials
        # Built before the shared one: a context that fails fails before any pool opens.
        self._company_transports: dict[str, httpx.AsyncBaseTransport] = {}
        if transport is None:
            self._company_transports = {
                key: build_transport(tls=context, max_connections=max_connections)
                for key, context in (company_tls or {}).items()
            }
            transport = build_transport(tls=tls, max_connections=max_connections)
        self._base_url = base_url.rstrip("/")
        self._api_version = api_version
        # Requests go straight to the transport, not through httpx.AsyncClient: the
        # client's per-request machinery (auth flow, redirects, cookies, hooks) does
        # nothing the bridge needs and was a third of the delivery CPU
        # (bench/end_to_end.py --profile). Nothing from the environment (proxies,
        # .netrc) changes where events go, and a redirect is simply an answer: a
        # misconfigured base_url, retried and seen in the metrics.
        self._transport = transport
        self._extensions = {"timeout": httpx.Timeout(timeout_seconds).as_dict()}
        self._deadline = timeout_seconds
        self._body_limit = body_limit
        self._urls: dict[str, httpx.URL] = {}
        self._headers: dict[str, httpx.Headers] = {}  # per company key

    async def post_event(
        self, company_key: str, body: bytes, trace_headers: Mapping[str, str] | None = None
    ) -> Outcome:
        """ONE attempt; never raises for HTTP or network trouble: the outcome is returned.

        ``trace_headers`` (``traceparent``, when tracing is on) go with the request.
        """
        headers = self._current_headers(company_key)
        if trace_headers is not None:
            headers = httpx.Headers(headers)
            headers.update(trace_headers)
        request = httpx.Request(
            "POST",
            self._url(company_key),
            content=body,
            headers=headers,
            extensions=self._extensions,
        )
        transport = self._company_transports.get(company_key, self._transport)
        try:
            answer = await self._exchange(transport, request)
        except Exception as exc:
            if isinstance(exc, TimeoutError):  # the deadline, or aiohttp's own timeouts
                return timed_out()
            error = as_httpx_error(exc)
            if error is None:
                raise
            return outcome_of_exception(error)
        # Classified by status whatever the body: a 2xx is accepted even if the
        # body was cut, and a 4xx's messages come from the part that was read.
        return outcome_of_response(answer.status, answer.headers, answer.body, time.time())

    async def _exchange(
        self, transport: httpx.AsyncBaseTransport, request: httpx.Request
    ) -> Answer:
        async def send() -> httpx.Response:
            return await transport.handle_async_request(request)

        return await exchange(send, deadline_seconds=self._deadline, limit=self._body_limit)

    def _url(self, company_key: str) -> httpx.URL:
        # Built once per key: letting httpx merge a path into base_url parses a URL
        # per request, about half of httpx's own set-up cost per request.
        url = self._urls.get(company_key)
        if url is None:
            url = self._urls[company_key] = httpx.URL(self._base_url + events_path(company_key))
        return url

    def _current_headers(self, company_key: str) -> httpx.Headers:
        """Built once per company and credentials version; httpx.Request copies them."""
        authorization = self._credentials.for_company(company_key).authorization()
        headers = self._headers.get(company_key)
        if headers is None or headers["Authorization"] != authorization:
            headers = self._headers[company_key] = self._build_headers(authorization)
        return headers

    def _build_headers(self, authorization: str) -> httpx.Headers:
        return httpx.Headers(
            {
                API_VERSION_HEADER: self._api_version,
                "Content-Type": JSON_CONTENT_TYPE,
                "Authorization": authorization,
                # aiohttp would ask for gzip: a compressed body could outgrow the cap.
                **NO_COMPRESSION,
            }
        )

    def refresh_credentials(self, company_key: str) -> bool:
        """Re-read the company's ``*_file`` credentials that changed; True when they did."""
        return self._credentials.refresh(company_key)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        for transport in self._company_transports.values():
            await transport.aclose()
        await self._transport.aclose()
