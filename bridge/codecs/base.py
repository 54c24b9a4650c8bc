"""The one interface every codec implements.

A decoder turns a record value's bytes into a *fresh* JSON-friendly dict: the
caller owns it and may mutate it (the engine adds the reserved ``_kafka`` key to it
without copying). Any bytes that are not a valid value raise
:class:`bridge.errors.DecodeError` with a stable ``code``; nothing else escapes,
except :class:`bridge.errors.SchemaRegistryUnavailable` (transient: retry the record).
Messages never include payload content (no person data).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final, Protocol

from bridge.errors import DecodeCode, DecodeError


class SourceFormat(StrEnum):
    """A source's ``format`` key: the one list of formats, which the configuration
    model, the compiler and :func:`~bridge.codecs.make_decoder` all read."""

    JSON = "json"
    AVRO = "avro"
    CONFLUENT_AVRO = "confluent-avro"
    PROTOBUF = "protobuf"
    CONFLUENT_PROTOBUF = "confluent-protobuf"
    CONFLUENT_JSON = "confluent-json"

    @property
    def is_avro(self) -> bool:
        """Whether values are Avro, so a schema file (if given) can check rule paths."""
        return self in (SourceFormat.AVRO, SourceFormat.CONFLUENT_AVRO)

    @property
    def is_protobuf(self) -> bool:
        """Whether values are Protobuf messages (a descriptor set names their type)."""
        return self in (SourceFormat.PROTOBUF, SourceFormat.CONFLUENT_PROTOBUF)

    @property
    def uses_registry(self) -> bool:
        """Whether values carry the Confluent header and need ``schema_registry:``."""
        return self in (
            SourceFormat.CONFLUENT_AVRO,
            SourceFormat.CONFLUENT_PROTOBUF,
            SourceFormat.CONFLUENT_JSON,
        )


FORMATS: Final = tuple(SourceFormat)
"""The values of a source's ``format`` key, in the order the docs list them."""


class Decoder(Protocol):
    """Bytes of one record value to a fresh, mutable, JSON-friendly dict."""

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode ``data``; raise DecodeError for bytes that are not a valid value."""
        ...


def require_bytes(data: bytes | None) -> bytes:
    """``data`` itself, or the DecodeError for a tombstone (a record without a value)."""
    if data is None:
        raise DecodeError(DecodeCode.NULL_VALUE, "the record has no value (a tombstone)")
    return data


def not_an_object(kind: str) -> DecodeError:
    """The error for a value that decoded to something other than an object."""
    return DecodeError(DecodeCode.NOT_AN_OBJECT, f"the value is a {kind}, not an object")
