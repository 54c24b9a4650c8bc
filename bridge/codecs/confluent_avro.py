"""The ``confluent-avro`` format: Confluent's wire format around an Avro body.

Layout: byte 0 is the magic byte ``0``; bytes 1-4 are the writer schema's id in the
Schema Registry (big-endian, unsigned); the rest is the schemaless Avro body.
The writer schema comes from the registry (:class:`SchemaRegistryClient`); an
optional reader schema (a file) resolves it to the shape the rules were written
for (Avro schema resolution: added fields take their defaults, removed fields are
dropped). The JSON-friendly plan is compiled once per writer id.
"""

from __future__ import annotations

import threading
from typing import Any

from bridge.codecs.avro_codec import read_avro
from bridge.codecs.avro_logical import Converter
from bridge.codecs.avro_plan import compile_plan, reading_schema
from bridge.codecs.avro_schema import AvroSchema
from bridge.codecs.confluent_header import HEADER_SIZE, MAGIC_BYTE, confluent_schema_id
from bridge.codecs.registry import SchemaRegistryClient

__all__ = ["HEADER_SIZE", "MAGIC_BYTE", "ConfluentAvroDecoder"]


class ConfluentAvroDecoder:
    """Decodes Confluent-framed Avro values; raises SchemaRegistryUnavailable when the
    writer schema cannot be fetched right now (retry the record, never dead-letter)."""

    def __init__(
        self, registry: SchemaRegistryClient, reader_schema: AvroSchema | None = None
    ) -> None:
        self.registry = registry
        self.reader_schema = reader_schema
        self._reader_plan = None if reader_schema is None else compile_plan(reader_schema)
        self._writers: dict[int, tuple[AvroSchema, Converter | None]] = {}
        self._lock = threading.Lock()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``truncated``, ``bad_magic_byte``,
        ``unknown_schema_id`` ... otherwise."""
        data, schema_id = confluent_schema_id(data)
        writer = self._writers.get(schema_id) or self._writer(schema_id)
        return read_avro(data, HEADER_SIZE, writer[0], self.reader_schema, writer[1])

    def _writer(self, schema_id: int) -> tuple[AvroSchema, Converter | None]:
        schema = self.registry.schema(schema_id)  # may raise; nothing is cached then
        with self._lock:
            entry = self._writers.get(schema_id)
            if entry is None:
                # The value's shape is the reader schema's when there is one.
                plan = self._reader_plan if self.reader_schema is not None else compile_plan(schema)
                entry = (reading_schema(schema), plan)
                self._writers[schema_id] = entry
            return entry
