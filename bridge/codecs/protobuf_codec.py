"""The ``protobuf`` and ``confluent-protobuf`` formats: Protobuf messages to plain dicts.

The ``protobuf`` library parses (its upb C core); this module only turns the parsed
message into the bridge's JSON-friendly dict. It walks the message itself instead
of calling ``json_format.MessageToDict`` because the issue asks for 64-bit integers
as integers (the JSON mapping writes them as strings, so MessageToDict's output
would need a second walk, guided by the descriptor, to undo that), and because a
plan compiled once per message type costs less per record than MessageToDict's
generic reflection (docs/performance.md). What it produces is the protobuf JSON
mapping with field names as written in the ``.proto`` (``preserving_proto_field_name``)
and these choices (docs/codecs.md):

- 64-bit integers are integers; enums are their value names (an unknown number
  stays the number); ``bytes`` are standard base64; float and double infinities
  and NaN are the mapping's strings ``"Infinity"``, ``"-Infinity"``, ``"NaN"``;
- fields without presence (proto3 scalars, repeated and map fields) are always
  present, with their default when unset, as every field of an Avro record is;
  fields with presence (messages, ``optional``, ``oneof`` members) only when set;
- well-known types: ``Timestamp`` (RFC 3339, ``Z``), ``Duration`` (``"1.5s"``),
  ``FieldMask``, ``Struct``, ``Value``, ``ListValue``, ``Any`` and ``Empty`` take
  their JSON mapping form (from ``json_format``, on that sub-message alone); the
  wrappers (``Int64Value`` ...) are their plain value, or absent when unset.

Schemas: ``protobuf`` reads a compiled descriptor set (``protoc
--descriptor_set_out=FILE --include_imports``) and a message's full name;
``confluent-protobuf`` reads the writer's ``FileDescriptorProto``s from the Schema
Registry (``?format=serialized``) and finds the message by the record's message
indexes. ``protobuf_shape`` gives a message's shape as an Avro-like schema, so the
rules' field paths are checked by the same checker as Avro's.
"""

from __future__ import annotations

import base64
import math
import struct
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, cast

from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from bridge.codecs.avro_schema import SchemaFileError
from bridge.codecs.base import require_bytes
from bridge.codecs.confluent_header import HEADER_SIZE, confluent_schema_id
from bridge.codecs.registry import ProtobufFiles, SchemaRegistryClient
from bridge.errors import DecodeCode, DecodeError

# The well-known types' files, which a writer schema imports without registering
# them (confluent-kafka's serializer skips them): taken from the library's own.
_WELL_KNOWN_FILES: Final = {
    module.DESCRIPTOR.name: module.DESCRIPTOR
    for module in (
        any_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        struct_pb2,
        timestamp_pb2,
        wrappers_pb2,
    )
}
_JSON_MAPPED: Final = frozenset(
    f"google.protobuf.{name}"
    for name in (
        "Timestamp",
        "Duration",
        "FieldMask",
        "Struct",
        "Value",
        "ListValue",
        "Any",
        "Empty",
    )
)
_WRAPPERS: Final = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)
# Message indexes name a message nested this deep at most; more is a hostile header.
MAX_MESSAGE_INDEXES: Final = 64
_MAX_VARINT_BYTES: Final = 10

_Convert = Callable[[Any], Any]


# Reading descriptor sets (the ``protobuf`` format's ``schema:`` file).


def load_message_descriptor(path: Path, message: str) -> Descriptor:
    """The descriptor of ``message`` (a full name) in the descriptor set at ``path``.

    Raises :class:`SchemaFileError` with a one-line message naming the file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SchemaFileError(f"descriptor set {path} does not exist") from None
    except OSError as exc:
        raise SchemaFileError(f"descriptor set {path} cannot be read: {exc.strerror}") from None
    descriptor_set = descriptor_pb2.FileDescriptorSet()
    try:
        descriptor_set.ParseFromString(data)
    except ProtobufDecodeError:
        descriptor_set.Clear()
    if not descriptor_set.file:
        raise SchemaFileError(
            f"{path} is not a descriptor set (make one with protoc --descriptor_set_out=FILE"
            " --include_imports)"
        )
    try:
        pool = _pool(descriptor_set.file)
    except ValueError as exc:
        raise SchemaFileError(f"descriptor set {path}: {exc}") from None
    try:
        return pool.FindMessageTypeByName(message)
    except KeyError:
        known = sorted(_message_names(descriptor_set.file))
        shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
        raise SchemaFileError(
            f"descriptor set {path} has no message {message!r} (it has: {shown})"
        ) from None


def _message_names(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> Iterable[str]:
    """The messages a source could name: not the well-known types, not map entries."""

    def nested(prefix: str, types: Iterable[descriptor_pb2.DescriptorProto]) -> Iterable[str]:
        for message in types:
            name = f"{prefix}{message.name}"
            if not message.options.map_entry:
                yield name
            yield from nested(f"{name}.", message.nested_type)

    for file in files:
        if file.name not in _WELL_KNOWN_FILES:
            yield from nested(f"{file.package}." if file.package else "", file.message_type)


def _pool(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> descriptor_pool.DescriptorPool:
    """A fresh pool holding ``files`` (each after its imports), plus the well-known
    types they import; ValueError names a missing import or a file that does not build."""
    pool = descriptor_pool.DescriptorPool()
    pending = list(files)
    names = {file.name for file in pending}
    added: set[str] = set()
    for file in pending:
        for dependency in file.dependency:
            if dependency not in names and dependency not in added:
                well_known = _WELL_KNOWN_FILES.get(dependency)
                if well_known is None:
                    raise ValueError(f"{file.name} imports {dependency}, which is not included")
                proto = descriptor_pb2.FileDescriptorProto()
                well_known.CopyToProto(proto)
                pool.Add(proto)
                added.add(dependency)
    for file in _in_import_order(pending):
        try:
            pool.Add(file)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{file.name} does not build ({type(exc).__name__})") from None
    return pool


def _in_import_order(
    files: list[descriptor_pb2.FileDescriptorProto],
) -> list[descriptor_pb2.FileDescriptorProto]:
    """``files`` with each after the files it imports (a descriptor set made without
    ``--include_imports`` order, or a registry's references, may differ)."""
    by_name = {file.name: file for file in files}
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(file: descriptor_pb2.FileDescriptorProto) -> None:
        if file.name in done or file.name in visiting:
            return  # a cycle is refused by the pool itself
        visiting.add(file.name)
        for dependency in file.dependency:
            if dependency in by_name:
                visit(by_name[dependency])
        visiting.discard(file.name)
        done.add(file.name)
        ordered.append(file)

    for file in files:
        visit(file)
    return ordered


# Message to dict.


class _Plans:
    """Compiled converters per message type; built once, read without a lock.

    One per decoder, not one per process: a reload builds new decoders from new
    descriptor pools, and a process-wide table would keep every old pool alive."""

    def __init__(self) -> None:
        self._plans: dict[Descriptor, _Convert] = {}
        self._lock = threading.Lock()

    def converter(self, descriptor: Descriptor) -> _Convert:
        plan = self._plans.get(descriptor)
        if plan is None:
            with self._lock:
                plan = self._plans.get(descriptor) or _message_converter(descriptor, self)
                self._plans[descriptor] = plan
        return plan

    def to_dict(self, message: Message) -> dict[str, Any]:
        """A parsed message as a fresh JSON-friendly dict (the mapping above)."""
        descriptor = cast(Descriptor, message.DESCRIPTOR)  # the stubs' union of two classes
        result: dict[str, Any] = self.converter(descriptor)(message)
        return result


def _message_converter(descriptor: Descriptor, plans: _Plans) -> _Convert:
    name = descriptor.full_name
    if name == "google.protobuf.Timestamp":
        return _timestamp
    if name in _JSON_MAPPED:
        return _json_mapped
    # Three lists so that the common fields cost a getattr and nothing else: plain
    # values (no presence, no conversion), converted ones, and fields with presence.
    plain: list[str] = []
    converted: list[tuple[str, _Convert]] = []
    present: list[tuple[str, _Convert]] = []
    for field in descriptor.fields:
        value_of = _field_converter(field, plans)
        if not _always_present(field):
            present.append((field.name, value_of))
        elif value_of is _same:
            plain.append(field.name)
        else:
            converted.append((field.name, value_of))

    def convert(message: Any) -> dict[str, Any]:
        result = {key: getattr(message, key) for key in plain}
        for key, value_of in converted:
            result[key] = value_of(getattr(message, key))
        for key, value_of in present:
            if message.HasField(key):
                result[key] = value_of(getattr(message, key))
        return result

    return convert


def _always_present(field: FieldDescriptor) -> bool:
    return field.is_repeated or not field.has_presence


def _field_converter(field: FieldDescriptor, plans: _Plans) -> _Convert:
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        key_of = _single_converter(message_type.fields_by_name["key"], plans)
        value_of = _single_converter(message_type.fields_by_name["value"], plans)
        return lambda entries: {
            _map_key(key_of(key)): value_of(value) for key, value in entries.items()
        }
    single = _single_converter(field, plans)
    if field.is_repeated:
        return lambda values: [single(value) for value in values]
    return single


def _nested(message_type: Descriptor, plans: _Plans) -> _Convert:
    """The converter of a message field, looked up on first use (a message type may
    contain itself, so it cannot be compiled before its container is)."""
    found: list[_Convert] = []

    def convert(message: Any) -> Any:
        if not found:
            found.append(plans.converter(message_type))
        return found[0](message)

    return convert


def _map_key(key: Any) -> str:
    # JSON object keys are strings: the mapping writes bool and integer keys as text.
    if isinstance(key, bool):
        return "true" if key else "false"
    return key if isinstance(key, str) else str(key)


def _single_converter(field: FieldDescriptor, plans: _Plans) -> _Convert:
    kind = field.type
    message_type, enum_type = field.message_type, field.enum_type
    if message_type is not None:
        if message_type.full_name in _WRAPPERS:
            inner = _single_converter(message_type.fields_by_name["value"], plans)
            return lambda wrapper: inner(wrapper.value)
        return _nested(message_type, plans)
    if enum_type is not None:
        names = {value.number: value.name for value in enum_type.values}
        return lambda number: names.get(number, number)
    if kind == FieldDescriptor.TYPE_BYTES:
        return lambda data: base64.b64encode(data).decode("ascii")
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return _double
    if kind == FieldDescriptor.TYPE_FLOAT:
        return _float32
    return _same


def _same(value: Any) -> Any:
    return value


def _double(value: float) -> float | str:
    return value if math.isfinite(value) else _non_finite(value)


def _float32(value: float) -> float | str:
    """The shortest decimal that reads back as the same 32-bit float (0.1, not
    0.10000000149011612), as the JSON mapping prints it. Hand-written: the library's
    own helper is internal (``google.protobuf.internal``)."""
    if not math.isfinite(value):
        return _non_finite(value)
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        shorter = float(f"{value:.{digits}g}")
        if struct.pack("<f", shorter) == packed:
            return shorter
    return value


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


_EPOCH: Final = datetime(1970, 1, 1)
# The JSON mapping's range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
_TIMESTAMP_SECONDS: Final = range(-62_135_596_800, 253_402_300_800)


def _timestamp(message: Any) -> str:
    """RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, exactly as the JSON mapping
    (``Timestamp.ToJsonString``) writes it. Hand-written because the library's takes
    about 4 µs and this under 1 µs: it is the one well-known type most events carry,
    often twice (docs/performance.md); a test compares the two over the whole range."""
    seconds, nanos = message.seconds, message.nanos
    if seconds not in _TIMESTAMP_SECONDS or not 0 <= nanos < 1_000_000_000:
        raise DecodeError(
            DecodeCode.INVALID_PROTOBUF,
            "a google.protobuf.Timestamp holds a value its JSON mapping cannot take",
        )
    text = (_EPOCH + timedelta(seconds=seconds)).isoformat()
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1_000 == 0:
        return f"{text}.{nanos // 1_000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def _json_mapped(message: Message) -> Any:
    try:
        return json_format.MessageToDict(
            message,
            preserving_proto_field_name=True,
            descriptor_pool=cast(descriptor_pool.DescriptorPool, message.DESCRIPTOR.file.pool),
        )
    except (json_format.Error, ValueError, TypeError, KeyError):
        raise DecodeError(
            DecodeCode.INVALID_PROTOBUF,
            f"a {message.DESCRIPTOR.full_name} holds a value its JSON mapping cannot take",
        ) from None


def _parse(message_class: type[Message], data: bytes) -> Message:
    message = message_class()
    try:
        message.ParseFromString(data)
    except ProtobufDecodeError:
        raise DecodeError(
            DecodeCode.INVALID_PROTOBUF,
            f"the value is not a valid {message_class.DESCRIPTOR.full_name} message"
            " (truncated, malformed, nested too deeply or invalid UTF-8 in a string)",
        ) from None
    return message


class ProtobufDecoder:
    """Decodes schemaless Protobuf values of one message type."""

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self._class = message_factory.GetMessageClass(descriptor)
        self._convert = _Plans().converter(descriptor)

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``invalid_protobuf`` or ``null_value`` otherwise."""
        result: dict[str, Any] = self._convert(_parse(self._class, require_bytes(data)))
        return result


# The Confluent wire format.


def read_message_indexes(data: bytes, position: int) -> tuple[tuple[int, ...], int]:
    """The message indexes after the Confluent header and where the payload starts.

    Confluent writes a count and then that many indexes, each a zigzag varint; a
    single ``0`` stands for ``[0]``, the file's first message.
    """
    count, position = _zigzag_varint(data, position)
    if count == 0:
        return (0,), position
    if not 0 < count <= MAX_MESSAGE_INDEXES:
        raise DecodeError(
            DecodeCode.BAD_MESSAGE_INDEX,
            f"the message index count is {count}, not 1 to {MAX_MESSAGE_INDEXES}",
        )
    indexes = []
    for _ in range(count):
        index, position = _zigzag_varint(data, position)
        if index < 0:
            raise DecodeError(
                DecodeCode.BAD_MESSAGE_INDEX, f"a message index is negative ({index})"
            )
        indexes.append(index)
    return tuple(indexes), position


def _zigzag_varint(data: bytes, position: int) -> tuple[int, int]:
    # Hand-written: the library's varint decoder is internal (google.protobuf.internal).
    result = shift = 0
    for offset in range(_MAX_VARINT_BYTES):
        if position + offset >= len(data):
            raise DecodeError(DecodeCode.TRUNCATED, "the value ends inside its message indexes")
        byte = data[position + offset]
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position + offset + 1
    raise DecodeError(DecodeCode.BAD_MESSAGE_INDEX, "a message index is longer than 10 bytes")


class _WriterTypes:
    """One writer schema's message types by index path, built from the registry's files."""

    def __init__(self, files: ProtobufFiles, where: str) -> None:
        protos = []
        for data in files.files:
            proto = descriptor_pb2.FileDescriptorProto()
            try:
                proto.ParseFromString(data)
            except ProtobufDecodeError:
                raise DecodeError(
                    DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where} is not a Protobuf descriptor"
                ) from None
            protos.append(proto)
        try:
            self._pool = _pool(protos)
        except ValueError as exc:
            raise DecodeError(DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where}: {exc}") from None
        self._file = protos[-1]
        self._where = where
        self._classes: dict[tuple[int, ...], type[Message]] = {}  # valid paths only
        self._lock = threading.Lock()

    def message_class(self, indexes: tuple[int, ...]) -> type[Message]:
        found = self._classes.get(indexes)  # no lock: a dict read is atomic
        if found is None:
            with self._lock:
                found = self._classes.get(indexes)
                if found is None:
                    found = message_factory.GetMessageClass(self._descriptor(indexes))
                    self._classes[indexes] = found
        return found

    def _descriptor(self, indexes: tuple[int, ...]) -> Descriptor:
        types = self._file.message_type
        names = [self._file.package] if self._file.package else []
        for index in indexes:
            if index >= len(types):
                raise DecodeError(
                    DecodeCode.BAD_MESSAGE_INDEX,
                    f"the message indexes {list(indexes)} name no message of {self._where}",
                )
            names.append(types[index].name)
            types = types[index].nested_type
        return self._pool.FindMessageTypeByName(".".join(names))


class ConfluentProtobufDecoder:
    """Decodes Confluent-framed Protobuf values; raises SchemaRegistryUnavailable when
    the writer schema cannot be fetched right now (retry the record, never dead-letter).

    With ``reader`` (the message type the rules were checked against, from a local
    descriptor set) the payload is parsed as that type, the way Avro's reader schema
    resolves a writer's record: Protobuf matches fields by number, so fields the
    reader lacks are dropped and renamed fields take the reader's names. The writer
    schema and message indexes are still resolved, so a wrong id or index is an error.
    """

    def __init__(self, registry: SchemaRegistryClient, reader: Descriptor | None = None) -> None:
        self.registry = registry
        self._reader = None if reader is None else message_factory.GetMessageClass(reader)
        self._writers: dict[int, _WriterTypes] = {}
        self._plans = _Plans()
        self._lock = threading.Lock()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``truncated``, ``bad_magic_byte``,
        ``unknown_schema_id``, ``bad_message_index``, ``invalid_protobuf`` ... otherwise."""
        data, schema_id = confluent_schema_id(data)
        indexes, start = read_message_indexes(data, HEADER_SIZE)
        writer = self._writers.get(schema_id) or self._writer(schema_id)
        message_class = writer.message_class(indexes)
        return self._plans.to_dict(_parse(self._reader or message_class, data[start:]))

    def _writer(self, schema_id: int) -> _WriterTypes:
        files = self.registry.protobuf_files(schema_id)  # may raise; nothing cached then
        with self._lock:
            writer = self._writers.get(schema_id)
            if writer is None:
                writer = _WriterTypes(files, f"schema id {schema_id}")
                self._writers[schema_id] = writer
            return writer


# The message's shape, for the load-time check of rule paths.

_SCALAR_SHAPES: Final = {
    FieldDescriptor.TYPE_DOUBLE: "double",
    FieldDescriptor.TYPE_FLOAT: "double",
    FieldDescriptor.TYPE_INT64: "long",
    FieldDescriptor.TYPE_UINT64: "long",
    FieldDescriptor.TYPE_SINT64: "long",
    FieldDescriptor.TYPE_FIXED64: "long",
    FieldDescriptor.TYPE_SFIXED64: "long",
    FieldDescriptor.TYPE_INT32: "int",
    FieldDescriptor.TYPE_UINT32: "int",
    FieldDescriptor.TYPE_SINT32: "int",
    FieldDescriptor.TYPE_FIXED32: "int",
    FieldDescriptor.TYPE_SFIXED32: "int",
    FieldDescriptor.TYPE_BOOL: "boolean",
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "string",
}
# Any name the shape does not define stands for "any type": the checker stops there.
ANY_TYPE: Final = "any"
_WELL_KNOWN_SHAPES: Final[dict[str, Any]] = {
    "google.protobuf.Timestamp": "string",
    "google.protobuf.Duration": "string",
    "google.protobuf.FieldMask": "string",
    "google.protobuf.Struct": {"type": "map", "values": ANY_TYPE},
    "google.protobuf.ListValue": {"type": "array", "items": ANY_TYPE},
    "google.protobuf.Value": ANY_TYPE,
    "google.protobuf.Any": ANY_TYPE,
}


def protobuf_shape(descriptor: Descriptor) -> dict[str, Any]:
    """``descriptor``'s decoded form as an Avro-like schema: records for messages,
    arrays for repeated fields, maps for map fields, enums, and the JSON mapping's
    types for the well-known ones (``bridge.mapping.avro_paths`` reads it)."""
    shape = _message_shape(descriptor, set())
    assert isinstance(shape, dict)  # the top level is never a well-known type here
    return shape


def _message_shape(descriptor: Descriptor, seen: set[str]) -> Any:
    name = descriptor.full_name
    if name in _WELL_KNOWN_SHAPES:
        return _WELL_KNOWN_SHAPES[name]
    if name in _WRAPPERS:
        return ["null", _field_shape(descriptor.fields_by_name["value"], seen)]
    if name in seen:
        return name  # a recursive message: a reference to its definition
    seen.add(name)
    fields = []
    for field in descriptor.fields:
        shape = _field_shape(field, seen)
        if not _always_present(field) and not isinstance(shape, list):
            shape = ["null", shape]
        fields.append({"name": field.name, "type": shape})
    return {"type": "record", "name": name, "fields": fields}


def _field_shape(field: FieldDescriptor, seen: set[str]) -> Any:
    message_type = field.message_type
    if message_type is not None and message_type.GetOptions().map_entry:
        return {"type": "map", "values": _single_shape(message_type.fields_by_name["value"], seen)}
    single = _single_shape(field, seen)
    return {"type": "array", "items": single} if field.is_repeated else single


def _single_shape(field: FieldDescriptor, seen: set[str]) -> Any:
    if field.message_type is not None:
        return _message_shape(field.message_type, seen)
    if field.enum_type is not None:
        enum = field.enum_type
        if enum.full_name in seen:
            return enum.full_name
        seen.add(enum.full_name)
        symbols = [value.name for value in enum.values]
        return {"type": "enum", "name": enum.full_name, "symbols": symbols}
    return _SCALAR_SHAPES.get(field.type, ANY_TYPE)
