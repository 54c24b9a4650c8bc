"""The Vibes Callback API client for ``vibes-bridge callbacks`` (register, list, delete).

Synchronous for its callers: a command makes two or three requests and exits.
Each request runs under one overall deadline (``vibes.timeout_seconds``: connect,
send, headers and body together) and its answer is read up to
``CALLBACK_RESPONSE_LIMIT`` (``bridge.bounded_http`` says how). The request
shapes and the registration rule are the pure facts of ``bridge.vibes.callbacks``;
this module only sends them and reads the answers.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from bridge.bounded_http import NO_COMPRESSION, Answer, BlockingHttp, is_deadline
from bridge.errors import BridgeError
from bridge.vibes.api import (
    API_VERSION_HEADER,
    CALLBACK_RESPONSE_LIMIT,
    JSON_CONTENT_TYPE,
    error_messages,
)
from bridge.vibes.callbacks import callbacks_path

Entity = dict[str, Any]


class CallbackApiError(BridgeError):
    """The Callback API refused or could not be reached; the message is safe to print."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CallbackApi:
    """Talks to ``{base_url}/companies/{company_key}/config/callbacks``."""

    http: BlockingHttp
    company_key: str
    deadline_seconds: float
    body_limit: int = CALLBACK_RESPONSE_LIMIT

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
        body_limit: int = CALLBACK_RESPONSE_LIMIT,
    ) -> CallbackApi:
        """A client with the Event API's headers; close it with :meth:`close`.

        ``timeout_seconds`` bounds each request as a whole (and each phase)."""
        http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "Authorization": authorization,
                API_VERSION_HEADER: api_version,
                "Accept": JSON_CONTENT_TYPE,
                **NO_COMPRESSION,
            },
            timeout=timeout_seconds,
            verify=tls if tls is not None else True,
            follow_redirects=False,
            trust_env=False,
        )
        return cls(BlockingHttp(http), company_key, timeout_seconds, body_limit)

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
            answer = self.http.request(
                method,
                path,
                content=content,
                headers=headers,
                deadline_seconds=self.deadline_seconds,
                limit=self.body_limit,
            )
        except (TimeoutError, httpx.HTTPError) as exc:
            if is_deadline(exc):
                raise CallbackApiError(
                    f"the Callback API did not answer within {self.deadline_seconds:g} s"
                ) from None
            raise CallbackApiError(f"cannot reach the Callback API: {type(exc).__name__}") from None
        if not 200 <= answer.status < 300:
            # A refusal is a refusal whatever its size: its messages come from the part read.
            raise CallbackApiError(_refusal(answer), answer.status)
        if answer.truncated:
            raise CallbackApiError(
                f"the Callback API answered more than {self.body_limit} bytes;"
                " the rest was discarded"
            )
        if not answer.body:
            return None
        try:
            return orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise CallbackApiError("the Callback API answered something that is not JSON") from None


def _entity(document: Any) -> Entity:
    if not isinstance(document, dict):
        raise CallbackApiError("the Callback API answered something that is not an entity")
    return document


def _refusal(answer: Answer) -> str:
    status = answer.status
    messages = error_messages(answer.body)
    if status in (401, 403):
        what = "the credentials were refused"
    elif status == 404:
        what = "not found (unknown company key or callback id)"
    elif status in (409, 422):
        what = "refused as conflicting"
    else:
        what = "refused"
    return f"HTTP {status}: {what}" + (f": {messages}" if messages else "")
