"""The Confluent wire format's header, shared by the three ``confluent-*`` formats.

Byte 0 is the magic byte ``0``; bytes 1-4 are the writer schema's id in the Schema
Registry (big-endian, unsigned); the format's body follows (Protobuf puts its
message indexes first, see :mod:`bridge.codecs.protobuf_codec`).
"""

from __future__ import annotations

from typing import Final

from bridge.codecs.base import require_bytes
from bridge.errors import DecodeCode, DecodeError

MAGIC_BYTE: Final = 0
HEADER_SIZE: Final = 5


def confluent_schema_id(data: bytes | None) -> tuple[bytes, int]:
    """The record's bytes and its schema id; DecodeError ``null_value``, ``truncated``
    or ``bad_magic_byte`` for bytes without the header."""
    data = require_bytes(data)
    if len(data) < HEADER_SIZE:
        raise DecodeError(
            DecodeCode.TRUNCATED, f"{len(data)} bytes, shorter than the 5-byte Confluent header"
        )
    if data[0] != MAGIC_BYTE:
        raise DecodeError(
            DecodeCode.BAD_MAGIC_BYTE,
            f"the first byte is {data[0]}, not the Confluent magic byte 0",
        )
    return data, int.from_bytes(data[1:HEADER_SIZE], "big")
