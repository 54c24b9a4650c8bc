"""The Vibes Event API's wire facts, shared by the delivery client and the simulator.

One place for what both sides of the wire must agree on: the events path, the
version and auth headers, the error envelope every 4xx carries, and how a
status code is to be read (``../reference/vibes-event-api.md`` in the shared docs).
Pure: no I/O library is imported here.
"""

from __future__ import annotations

import base64
from enum import Enum
from typing import Any, Final
from urllib.parse import quote

import orjson

EVENTS_PATH_TEMPLATE: Final = "/companies/{company_key}/events"
API_VERSION_HEADER: Final = "X-API-Version"
DEFAULT_API_VERSION: Final = "2"
JSON_CONTENT_TYPE: Final = "application/json"
# Vibes' error messages go into a dead-letter header; the spec caps it at 1 KiB.
ERROR_RESPONSE_LIMIT: Final = 1024
# The most of an Event API answer the bridge reads. Vibes answers small JSON (the
# accepted event, or the error envelope: a few hundred bytes); 64 KiB holds any
# real answer, and what is past it is discarded unread (docs/running.md).
RESPONSE_BODY_LIMIT: Final = 64 * 1024
# The same for the Callback API: a list of registrations is the largest answer.
CALLBACK_RESPONSE_LIMIT: Final = 1024 * 1024


def events_path(company_key: str) -> str:
    """``/companies/{company_key}/events`` with the key escaped for a URL path."""
    return EVENTS_PATH_TEMPLATE.format(company_key=quote(company_key, safe=""))


def basic_auth_header(username: str, password: str) -> str:
    """The ``Authorization`` value for HTTP Basic, as the Event API asks for it."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def error_envelope(status: int, messages: list[str]) -> dict[str, Any]:
    """``{"errors": [{"message": ..., "code": status}, ...]}``: the shape of every Vibes 4xx.

    ``code`` is the HTTP status: Vibes publishes no table of its own codes.
    """
    return {"errors": [{"message": message, "code": status} for message in messages]}


def error_messages(body: bytes, limit: int = ERROR_RESPONSE_LIMIT) -> str:
    """Vibes' error messages from an answer's body, on one line, cut to ``limit`` bytes.

    Only the ``message`` strings of the envelope are kept: anything else in the
    body (echoed input, HTML from a proxy) could hold person data or be huge.
    A body that is not the envelope gives an empty string.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return ""
    messages = [
        entry["message"]
        for entry in errors
        if isinstance(entry, dict) and isinstance(entry.get("message"), str)
    ]
    return one_line("; ".join(message for message in messages if message), limit)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` UTF-8 bytes on a character boundary.

    Dead-letter headers and log fields take Vibes' messages and the bridge's own
    error messages through this, so neither can grow without bound.
    """
    flat = " ".join(text.split())
    encoded = flat.encode("utf-8")
    if len(encoded) <= limit:
        return flat
    return encoded[: limit - 3].decode("utf-8", "ignore") + "..."


class StatusClass(Enum):
    """What an Event API status means for the event that got it."""

    ACCEPTED = "accepted"  # 2xx: Vibes has the event
    DUPLICATE = "duplicate"  # 409: Vibes already has this event_id: as good as delivered
    CREDENTIALS = "credentials"  # 401, 403: wrong for every event; pause, never dead-letter
    RATE_LIMITED = "rate_limited"  # 429: slow the company key's budget and retry
    UNAVAILABLE = "unavailable"  # 5xx (and 408): retry with backoff
    REJECTED = "rejected"  # any other 4xx: this event can never succeed
    UNEXPECTED = "unexpected"  # 1xx, 3xx: a proxy or a redirect; retried like a 5xx


def status_class(status: int) -> StatusClass:
    """Sort an HTTP status into what the bridge must do with the event."""
    if 200 <= status < 300:
        return StatusClass.ACCEPTED
    if status == 409:
        return StatusClass.DUPLICATE
    if status in (401, 403):
        return StatusClass.CREDENTIALS
    if status == 429:
        return StatusClass.RATE_LIMITED
    if status == 408 or 500 <= status < 600:
        return StatusClass.UNAVAILABLE
    if 400 <= status < 500:
        return StatusClass.REJECTED
    return StatusClass.UNEXPECTED
