"""Codecs: a record value's bytes to a fresh JSON-friendly dict.

Formats (a source's ``format``): ``json`` (:class:`JsonDecoder`), ``avro``
(:class:`AvroDecoder`, schemaless bodies and an ``.avsc`` file),
``confluent-avro`` (:class:`ConfluentAvroDecoder`, magic byte, schema id and the
Schema Registry), ``protobuf`` (:class:`ProtobufDecoder`, a descriptor set and a
message name), ``confluent-protobuf`` (:class:`ConfluentProtobufDecoder`) and
``confluent-json`` (:class:`ConfluentJsonDecoder`). :func:`make_decoder` builds one
from a source's settings.
Bad bytes raise :class:`bridge.errors.DecodeError` with a stable ``code``; a
registry outage raises :class:`bridge.errors.SchemaRegistryUnavailable`.

The JSON-friendly forms of Avro's logical types and bytes are listed in
:mod:`bridge.codecs.avro_logical`. The static check of rule paths against an Avro
schema interprets JMESPath, so it lives in ``bridge.mapping.avro_paths``.

The Protobuf names are imported on first use (``__getattr__`` below): the
``protobuf`` runtime costs about 4 MB and tens of milliseconds at every start,
and only the two Protobuf formats need it (``tests/commands/test_cli_lazy.py``).
"""

from typing import TYPE_CHECKING, Any

from bridge.codecs.avro_codec import AvroDecoder
from bridge.codecs.avro_schema import AvroSchema, SchemaFileError, load_avro_schema
from bridge.codecs.base import FORMATS, Decoder, SourceFormat
from bridge.codecs.confluent_avro import ConfluentAvroDecoder
from bridge.codecs.confluent_json import ConfluentJsonDecoder, json_schema_shape, load_json_schema
from bridge.codecs.factory import make_decoder
from bridge.codecs.json_codec import JsonDecoder
from bridge.codecs.registry import SchemaRegistryClient

if TYPE_CHECKING:
    from bridge.codecs.protobuf_codec import (
        ConfluentProtobufDecoder,
        ProtobufDecoder,
        load_message_descriptor,
        protobuf_shape,
    )

_PROTOBUF_NAMES = frozenset(
    {"ConfluentProtobufDecoder", "ProtobufDecoder", "load_message_descriptor", "protobuf_shape"}
)


def __getattr__(name: str) -> Any:
    if name in _PROTOBUF_NAMES:
        from bridge.codecs import protobuf_codec

        return getattr(protobuf_codec, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FORMATS",
    "AvroDecoder",
    "AvroSchema",
    "ConfluentAvroDecoder",
    "ConfluentJsonDecoder",
    "ConfluentProtobufDecoder",
    "Decoder",
    "JsonDecoder",
    "ProtobufDecoder",
    "SchemaFileError",
    "SchemaRegistryClient",
    "SourceFormat",
    "json_schema_shape",
    "load_avro_schema",
    "load_json_schema",
    "load_message_descriptor",
    "make_decoder",
    "protobuf_shape",
]
