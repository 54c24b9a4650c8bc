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
"""

from bridge.codecs.avro_codec import AvroDecoder
from bridge.codecs.avro_schema import AvroSchema, SchemaFileError, load_avro_schema
from bridge.codecs.base import FORMATS, Decoder, SourceFormat
from bridge.codecs.confluent_avro import ConfluentAvroDecoder
from bridge.codecs.confluent_json import ConfluentJsonDecoder, json_schema_shape, load_json_schema
from bridge.codecs.factory import make_decoder
from bridge.codecs.json_codec import JsonDecoder
from bridge.codecs.protobuf_codec import (
    ConfluentProtobufDecoder,
    ProtobufDecoder,
    load_message_descriptor,
    protobuf_shape,
)
from bridge.codecs.registry import SchemaRegistryClient

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
