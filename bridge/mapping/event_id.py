"""The event_id: Vibes' idempotency key, so it must be the same for every redelivery.

Spec section 1: when a rule gives no ``event_id``, it is the SHA-1 of the record's
coordinates; a given one longer than Vibes allows is replaced by its SHA-1. Either
way the same record and rule always give the same id.
"""

from __future__ import annotations

import hashlib
from typing import Any

from bridge.mapping.conversions import to_string
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH


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
