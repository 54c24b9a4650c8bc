"""One constructor for every format, as the configuration names them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.codecs.avro_codec import AvroDecoder
from bridge.codecs.avro_schema import load_avro_schema
from bridge.codecs.base import FORMATS, Decoder, SourceFormat
from bridge.codecs.confluent_avro import ConfluentAvroDecoder
from bridge.codecs.confluent_json import ConfluentJsonDecoder
from bridge.codecs.json_codec import JsonDecoder
from bridge.codecs.registry import DEFAULT_TIMEOUT_SECONDS, SchemaRegistryClient


def make_decoder(
    format: str,
    *,
    schema: Any = None,
    schema_path: Path | None = None,
    message: str | None = None,
    validate: bool = False,
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
    - ``protobuf``: the message's descriptor (``schema``), or a descriptor set file
      (``schema_path``) and the message's full name (``message``).
    - ``confluent-protobuf``: the registry; a descriptor (as for ``protobuf``), if
      given, is the message type payloads are read as.
    - ``confluent-json``: the registry; ``validate`` checks each document against
      its registered JSON Schema.

    Raises ValueError for an unknown format or a missing argument, and
    :class:`~bridge.codecs.SchemaFileError` for a schema file that cannot be used.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    kind = SourceFormat(format)
    if kind is SourceFormat.JSON:
        return JsonDecoder()
    schema = _schema(kind, schema, schema_path, message)
    if kind is SourceFormat.AVRO:
        if schema is None:
            raise ValueError("the avro format needs a schema file")
        return AvroDecoder(schema)
    if kind is SourceFormat.PROTOBUF:
        return _protobuf_decoder(schema, None)
    if registry is None:
        if registry_url is None:
            raise ValueError(f"the {format} format needs a Schema Registry URL")
        registry = SchemaRegistryClient(registry_url, timeout=registry_timeout)
    if kind is SourceFormat.CONFLUENT_PROTOBUF:
        return _protobuf_decoder(schema, registry)
    if kind is SourceFormat.CONFLUENT_JSON:
        return ConfluentJsonDecoder(registry, validate=validate)
    return ConfluentAvroDecoder(registry, reader_schema=schema)


def _protobuf_decoder(schema: Any, registry: SchemaRegistryClient | None) -> Decoder:
    """``protobuf`` (no registry) or ``confluent-protobuf``. Imported here: only these two
    formats pay for the protobuf runtime (about 4 MB at start)."""
    from google.protobuf.descriptor import Descriptor

    from bridge.codecs.protobuf_codec import ConfluentProtobufDecoder, ProtobufDecoder

    descriptor = schema if isinstance(schema, Descriptor) else None
    if registry is not None:
        return ConfluentProtobufDecoder(registry, descriptor)
    if descriptor is None:
        raise ValueError("the protobuf format needs a descriptor set file and a message name")
    return ProtobufDecoder(descriptor)


def _schema(kind: SourceFormat, schema: Any, path: Path | None, message: str | None) -> Any:
    """``schema``, or the one ``path`` holds for this format (Avro or Protobuf)."""
    if schema is not None or path is None:
        return schema
    if kind.is_avro:
        return load_avro_schema(path)
    if kind.is_protobuf:
        if message is None:
            raise ValueError(f"the {kind} format needs message: with its descriptor set")
        from bridge.codecs.protobuf_codec import load_message_descriptor

        return load_message_descriptor(path, message)
    return None  # confluent-json: a local JSON Schema serves the load-time checks only
