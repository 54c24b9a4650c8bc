"""One constructor for the three formats, as the configuration names them."""

from __future__ import annotations

from pathlib import Path

from bridge.codecs.avro_codec import AvroDecoder
from bridge.codecs.avro_schema import AvroSchema, load_avro_schema
from bridge.codecs.base import FORMATS, Decoder
from bridge.codecs.confluent_avro import ConfluentAvroDecoder
from bridge.codecs.json_codec import JsonDecoder
from bridge.codecs.registry import DEFAULT_TIMEOUT_SECONDS, SchemaRegistryClient


def make_decoder(
    format: str,
    *,
    schema: AvroSchema | None = None,
    schema_path: Path | None = None,
    registry_url: str | None = None,
    registry: SchemaRegistryClient | None = None,
    registry_timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Decoder:
    """The decoder for a source.

    - ``json``: takes nothing else.
    - ``avro``: the schema, parsed (``schema``, e.g. already loaded by the
      configuration loader) or as a file (``schema_path``).
    - ``confluent-avro``: ``registry_url`` (or a shared ``registry`` client);
      ``schema``/``schema_path``, if given, is the reader schema.

    Raises ValueError for an unknown format or a missing argument, and
    :class:`~bridge.codecs.SchemaFileError` for a schema file that cannot be used.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if schema is None and schema_path is not None:
        schema = load_avro_schema(schema_path)
    if format == "json":
        return JsonDecoder()
    if format == "avro":
        if schema is None:
            raise ValueError("the avro format needs a schema file")
        return AvroDecoder(schema)
    if registry is None:
        if registry_url is None:
            raise ValueError("the confluent-avro format needs a Schema Registry URL")
        registry = SchemaRegistryClient(registry_url, timeout=registry_timeout)
    return ConfluentAvroDecoder(registry, reader_schema=schema)
