"""The validate stage: what makes a mapped event one that Vibes will accept.

Checks that can be done when the file is loaded (literal event types) are done
there by the compiler; these are the per-record ones. Each raises
:class:`MappingError` with a stable code and a message that starts with the field
(the engine adds the rule), so a bad record becomes a dead letter before any HTTP
call. Messages never quote the value: it may be a person's data.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import MappingCode, MappingError
from bridge.mapping.conversions import to_string
from bridge.vibes.entity import is_valid_event_type


def checked_event_type(event_type: Any) -> str:
    """A computed event type, or a mapping error if Vibes would refuse it."""
    if event_type is None:
        raise MappingError(MappingCode.INVALID_EVENT_TYPE, "event_type: the template is null")
    if not isinstance(event_type, str) or not is_valid_event_type(event_type):
        raise MappingError(
            MappingCode.INVALID_EVENT_TYPE,
            "event_type: the computed type may hold only letters, digits, '-' and '_'",
        )
    return event_type


def checked_body_size(body: bytes, limit: int) -> bytes:
    """The encoded body, or a mapping error when it is over ``vibes.max_body_bytes``.

    Vibes refuses a body over its documented limit; refused here, it is a dead
    letter naming the size instead of a POST that can only fail.
    """
    if len(body) > limit:
        raise MappingError(
            MappingCode.BODY_TOO_LARGE,
            f"the encoded event is {len(body)} bytes; vibes.max_body_bytes is {limit}",
        )
    return body


def recipient_value(value: Any, field: str) -> str:
    """Vibes wants recipient ids as strings: numbers are written as text, structures refused."""
    if isinstance(value, str):
        if not value:
            raise MappingError(MappingCode.INVALID_RECIPIENT, f"{field}: an empty string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(MappingCode.INVALID_RECIPIENT, f"{field}: must be a string or a number")
    return to_string(value)
