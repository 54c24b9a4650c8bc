"""The one interface every codec implements.

A decoder turns a record value's bytes into a *fresh* JSON-friendly dict: the
caller owns it and may mutate it (the engine adds the reserved ``_kafka`` key to it
without copying). Any bytes that are not a valid value raise
:class:`bridge.errors.DecodeError` with a stable ``code``; nothing else escapes,
except :class:`bridge.errors.SchemaRegistryUnavailable` (transient: retry the record).
Messages never include payload content (no person data).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from bridge.errors import DecodeError

FORMATS: Final = ("json", "avro", "confluent-avro")
"""The values of a source's ``format`` key."""


class Decoder(Protocol):
    """Bytes of one record value to a fresh, mutable, JSON-friendly dict."""

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode ``data``; raise DecodeError for bytes that are not a valid value."""
        ...


def require_bytes(data: bytes | None) -> bytes:
    """``data`` itself, or the DecodeError for a tombstone (a record without a value)."""
    if data is None:
        raise DecodeError("null_value", "the record has no value (a tombstone)")
    return data


def not_an_object(kind: str) -> DecodeError:
    """The error for a value that decoded to something other than an object."""
    return DecodeError("not_an_object", f"the value is a {kind}, not an object")
