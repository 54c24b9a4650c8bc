"""The Vibes Callback API client for ``vibes-bridge callbacks`` (register, list, delete).

Synchronous httpx: a command makes two or three requests and exits, so the
event loop and pooled transport of the delivery client would buy nothing. The
request shapes and the registration rule are the pure facts of
``bridge.vibes.callbacks``; this module only sends them and reads the answers.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bridge.vibes.api import API_VERSION_HEADER, JSON_CONTENT_TYPE, error_messages
from bridge.vibes.callbacks import callbacks_path

Entity = dict[str, Any]


class CallbackApiError(Exception):
    """The Callback API refused or could not be reached; the message is safe to print."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CallbackApi:
    """Talks to ``{base_url}/companies/{company_key}/config/callbacks``."""

    http: httpx.Client
    company_key: str

    @classmethod
    def connect(
        cls,
        *,
        base_url: str,
        company_key: str,
        authorization: str,
        api_version: str,
        timeout_seconds: float,
        tls: ssl.SSLContext | None = None,
    ) -> CallbackApi:
        """A client with the Event API's headers; close it with :meth:`close`."""
        http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": authorization,
                API_VERSION_HEADER: api_version,
                "Accept": JSON_CONTENT_TYPE,
            },
            timeout=timeout_seconds,
            verify=tls if tls is not None else True,
            follow_redirects=False,
            trust_env=False,
        )
        return cls(http, company_key)

    def create(self, entity: Mapping[str, Any]) -> Entity:
        """POST a registration; the created entity (201)."""
        answer = self._send("POST", callbacks_path(self.company_key), body=entity)
        return _entity(answer)

    def list(self) -> list[Entity]:
        """Active and future registrations."""
        document = self._send("GET", callbacks_path(self.company_key))
        if isinstance(document, dict):  # some Vibes lists come wrapped
            document = document.get("callbacks", document.get("data"))
        if not isinstance(document, list):
            raise CallbackApiError("the Callback API answered a list that is not a JSON list")
        return [entry for entry in document if isinstance(entry, dict)]

    def get(self, callback_id: str) -> Entity:
        return _entity(self._send("GET", callbacks_path(self.company_key, callback_id)))

    def delete(self, callback_id: str) -> None:
        """End a registration (Vibes sets its end date to now)."""
        self._send("DELETE", callbacks_path(self.company_key, callback_id))

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, *, body: Mapping[str, Any] | None = None) -> Any:
        content = None if body is None else orjson.dumps(body)
        headers = {} if body is None else {"Content-Type": JSON_CONTENT_TYPE}
        try:
            response = self.http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise CallbackApiError(f"cannot reach the Callback API: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise CallbackApiError(_refusal(response), response.status_code)
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise CallbackApiError("the Callback API answered something that is not JSON") from None


def _entity(document: Any) -> Entity:
    if not isinstance(document, dict):
        raise CallbackApiError("the Callback API answered something that is not an entity")
    return document


def _refusal(response: httpx.Response) -> str:
    status = response.status_code
    messages = error_messages(response.content)
    if status in (401, 403):
        what = "the credentials were refused"
    elif status == 404:
        what = "not found (unknown company key or callback id)"
    elif status in (409, 422):
        what = "refused as conflicting"
    else:
        what = "refused"
    return f"HTTP {status}: {what}" + (f": {messages}" if messages else "")
