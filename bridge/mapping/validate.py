"""The validate stage: what makes a mapped event one that Vibes will accept.

Checks that can be done when the file is loaded (literal event types) are done
there by the compiler; these are the per-record ones. Each raises
:class:`MappingError` with a stable code, so a bad record becomes a dead letter
before any HTTP call.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bridge.errors import MappingError
from bridge.mapping.conversions import to_string
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH, is_valid_event_type


def checked_event_type(event_type: Any, rule: str) -> str:
    """A computed event type, or a mapping error if Vibes would refuse it."""
    if event_type is None:
        raise MappingError("invalid_event_type", f"rule {rule}: the event_type template is null")
    if not isinstance(event_type, str) or not is_valid_event_type(event_type):
        raise MappingError(
            "invalid_event_type",
            f"rule {rule}: the computed event_type may hold only letters, digits, '-' and '_'",
        )
    return event_type


def recipient_value(value: Any, field: str) -> str:
    """Vibes wants recipient ids as strings: numbers are written as text, structures refused."""
    if isinstance(value, str):
        if not value:
            raise MappingError("invalid_recipient", f"{field} is an empty string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError("invalid_recipient", f"{field} must be a string or a number")
    return to_string(value)


def sha1_hex(text: str) -> str:
    """The 40-character SHA-1 hex digest of ``text``'s UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def coordinates_event_id(rule: str, topic: str, partition: int, offset: int) -> str:
    """The default event_id: stable for a record, so a redelivery never sends twice."""
    return sha1_hex(f"{rule}|{topic}|{partition}|{offset}")


def given_event_id(value: Any) -> str | None:
    """A mapped event_id: text as is, hashed when longer than Vibes allows; None when empty."""
    if value is None:
        return None
    text = to_string(value)
    if not text:
        return None
    return text if len(text) <= MAX_EVENT_ID_LENGTH else sha1_hex(text)
