"""Make decoded Avro values JSON-friendly, touching only the places that need it.

fastavro returns logical types as Python objects (``datetime``, ``date``, ``time``,
``Decimal``, ``UUID``) and ``bytes``/``fixed`` as ``bytes``. Rules are JMESPath over
JSON-like documents and the Vibes body is JSON, so each becomes a string:

================================  ==========================================
Avro type                          string
================================  ==========================================
``timestamp-millis``               ``2026-11-27T10:00:00.123Z`` (UTC, always 3 fraction digits)
``timestamp-micros``               ``2026-11-27T10:00:00.123456Z`` (UTC, always 6)
``timestamp-nanos``                ``2026-11-27T10:00:00.123456789Z`` (UTC, always 9)
``local-timestamp-millis``         ``2026-11-27T10:00:00.123`` (no zone: the
                                   writer's local time, so no ``Z``)
``local-timestamp-micros/nanos``   likewise with 6 / 9 fraction digits
``date``                           ``2026-11-27``
``time-millis``                    ``10:00:00.123``
``time-micros``                    ``10:00:00.123456`` (6 digits: no precision is lost)
``decimal`` (bytes or fixed)       plain notation with exactly ``scale`` fraction
                                   digits: ``12.50``, ``-0.05``, ``1250`` (scale 0);
                                   never an exponent, never a float
``uuid`` (string)                  the string as written
``uuid`` (fixed 16)                ``123e4567-e89b-12d3-a456-426614174000``
``bytes``, ``fixed`` (others)      standard base64 with padding (RFC 4648 §4), the
                                   usual JSON form of binary data (Kafka Connect,
                                   protobuf's JSON mapping); lossless, unlike latin-1
================================  ==========================================

Years are always four digits (``0001`` to ``9999``); a value outside that range is a
decode error (``value_out_of_range``), as fastavro itself cannot represent it.
A ``decimal`` whose bytes hold more digits than its declared ``precision`` (invalid
per the Avro specification) comes out as fastavro rounds it.

Performance: the hot path must not walk whole records. :func:`compile_plan` looks
at the schema once and returns a converter that visits only the fields, array
items, map values and union branches that can hold such a value (``None`` when the
schema has none, so nothing runs per record). Record, array and map values are
converted in place; leaves check the Python type before converting, so a value that
is already JSON-friendly (a reader-schema default, an evolved writer) is left as is.

Unions are dispatched on the value's Python type (the Avro rules allow one branch
per unnamed type). A dict in a union of several records and maps is matched to the
record whose field names are exactly its keys, else to the map; two record branches
with the same field names are told apart by nothing, and the first one wins.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from bridge.codecs.avro_schema import NAMED_TYPES, PRIMITIVE_TYPES, AvroSchema, named_types

Converter = Callable[[Any], Any]
"""Takes a decoded value and returns its JSON-friendly form (containers in place)."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_NANOS_PER_SECOND: Final = 1_000_000_000
_MICROS_PER_DAY: Final = 86_400_000_000


# --------------------------------------------------------------------------- leaves
# Each leaf accepts fastavro's object (the usual case) and the raw Avro value (a
# reader-schema default or a writer without the logical type), and returns any
# other value unchanged.


def _utc_timestamp(timespec: str, unit: int) -> Converter:
    """timestamp-millis / -micros: fastavro gives an aware UTC datetime."""

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is datetime:
            # isoformat() of a UTC datetime ends in "+00:00"; the contract is "Z".
            return value.isoformat(timespec=timespec)[:-6] + "Z"
        if kind is int:
            return (_EPOCH + timedelta(microseconds=value * unit)).isoformat(timespec=timespec)[
                :-6
            ] + "Z"
        return value

    return convert


def _local_timestamp(timespec: str, unit: int) -> Converter:
    """local-timestamp-millis / -micros: fastavro gives a naive datetime."""

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is datetime:
            return value.isoformat(timespec=timespec)
        if kind is int:
            return (_EPOCH_NAIVE + timedelta(microseconds=value * unit)).isoformat(
                timespec=timespec
            )
        return value

    return convert


def _nanos_timestamp(zone: str) -> Converter:
    """timestamp-nanos / local-timestamp-nanos: fastavro leaves the raw long, and
    ``datetime`` stops at microseconds, so the nine digits are written by hand."""

    def convert(value: Any) -> Any:
        if type(value) is not int:
            return value
        seconds, nanos = divmod(value, _NANOS_PER_SECOND)
        moment = _EPOCH_NAIVE + timedelta(seconds=seconds)
        return f"{moment.isoformat(timespec='seconds')}.{nanos:09d}{zone}"

    return convert


def _date(value: Any) -> Any:
    kind = type(value)
    if kind is date:
        return value.isoformat()
    if kind is int:
        return date.fromordinal(_EPOCH_ORDINAL + value).isoformat()
    return value


def _time(timespec: str, unit: int) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is time:
            return value.isoformat(timespec=timespec)
        if kind is int:
            micros = value * unit
            if not 0 <= micros < _MICROS_PER_DAY:  # as fastavro's time() would refuse
                raise OverflowError("time of day out of range")
            return (
                (datetime.min + timedelta(microseconds=micros)).time().isoformat(timespec=timespec)
            )
        return value

    return convert


def _decimal(scale: int) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is Decimal:
            return format(value, "f")  # "f": plain notation, never "1E-7"
        if kind is bytes:
            return format_unscaled(int.from_bytes(value, "big", signed=True), scale)
        return value

    return convert


def format_unscaled(unscaled: int, scale: int) -> str:
    """``unscaled * 10**-scale`` in plain notation with exactly ``scale`` digits.

    Integer arithmetic, so it is exact at any size (no float, no decimal context).
    """
    if scale == 0:
        return str(unscaled)
    sign = "-" if unscaled < 0 else ""
    whole, fraction = divmod(abs(unscaled), 10**scale)
    return f"{sign}{whole}.{fraction:0{scale}d}"


def _uuid_string(value: Any) -> Any:
    return str(value) if type(value) is uuid.UUID else value


def _uuid_fixed(value: Any) -> Any:
    # fastavro has no reader for uuid on fixed(16) (Avro 1.12), so this does it.
    return str(uuid.UUID(bytes=value)) if type(value) is bytes and len(value) == 16 else value


def _base64(value: Any) -> Any:
    # b2a_base64 is base64.b64encode without its Python-level wrapper.
    return (
        binascii.b2a_base64(value, newline=False).decode("ascii") if type(value) is bytes else value
    )


# ------------------------------------------------------------------------- compiling


_LONG_LEAVES: Final[dict[str, tuple[Converter, type]]] = {
    # logicalType -> (converter, the Python type fastavro gives, for union dispatch)
    "timestamp-millis": (_utc_timestamp("milliseconds", 1000), datetime),
    "timestamp-micros": (_utc_timestamp("microseconds", 1), datetime),
    "timestamp-nanos": (_nanos_timestamp("Z"), int),
    "local-timestamp-millis": (_local_timestamp("milliseconds", 1000), datetime),
    "local-timestamp-micros": (_local_timestamp("microseconds", 1), datetime),
    "local-timestamp-nanos": (_nanos_timestamp(""), int),
    "time-micros": (_time("microseconds", 1), time),
}
_INT_LEAVES: Final[dict[str, tuple[Converter, type]]] = {
    "date": (_date, date),
    "time-millis": (_time("milliseconds", 1000), time),
}


def _leaf(node: Mapping[str, Any], base: str) -> tuple[Converter, type] | None:
    """The converter for a primitive or fixed node, and the Python type it turns."""
    logical = node.get("logicalType")
    if not isinstance(logical, str):
        logical = ""
    if base == "long":
        return _LONG_LEAVES.get(logical)
    if base == "int":
        return _INT_LEAVES.get(logical)
    if base == "string":
        return (_uuid_string, uuid.UUID) if logical == "uuid" else None
    if base in ("bytes", "fixed"):
        if logical == "decimal":
            return _decimal(int(node.get("scale", 0))), Decimal
        if logical == "uuid" and base == "fixed" and node.get("size") == 16:
            return _uuid_fixed, bytes
        return _base64, bytes
    return None


class _Compiler:
    """Builds the converter tree; named types are compiled once, recursion allowed."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self.named = named
        self.interesting = _interesting_names(named)
        self.memo: dict[str, Converter | None] = {}
        self.in_progress: set[str] = set()

    def compile(self, node: Any) -> Converter | None:
        return self.compile_typed(node)[0]

    def compile_typed(self, node: Any) -> tuple[Converter | None, type | None]:
        """The converter for ``node`` and the Python type of the values it converts
        (``dict``/``list`` for containers), for union dispatch."""
        if isinstance(node, list):
            return self._union(node), None
        if isinstance(node, str):
            if node in PRIMITIVE_TYPES:
                return (_base64, bytes) if node == "bytes" else (None, None)
            return self._named(node)
        if not isinstance(node, dict):
            return None, None
        kind = node.get("type")
        if isinstance(kind, (dict, list)):
            return self.compile_typed(kind)
        if kind in ("record", "error", "enum", "fixed") and isinstance(node.get("name"), str):
            return self._named(node["name"], node)
        if kind == "array":
            items = self.compile(node.get("items"))
            return (None if items is None else _array(items)), list
        if kind == "map":
            values = self.compile(node.get("values"))
            return (None if values is None else _map(values)), dict
        if isinstance(kind, str) and kind in PRIMITIVE_TYPES:
            leaf = _leaf(node, kind)
            return leaf if leaf is not None else (None, None)
        if isinstance(kind, str) and kind in self.named:  # {"type": "Name"}
            return self._named(kind)
        return None, None

    def _named(self, name: str, definition: Any = None) -> tuple[Converter | None, type | None]:
        node = definition if definition is not None else self.named.get(name)
        if not isinstance(node, dict):
            return None, None
        kind = node.get("type")
        if kind == "enum":
            return None, None
        if kind == "fixed":
            leaf = _leaf(node, "fixed")
            return leaf if leaf is not None else (None, None)
        if name not in self.interesting:
            return None, dict
        if name in self.memo:
            return self.memo[name], dict
        if name in self.in_progress:  # a recursive reference: bound once compiled
            return _late(self.memo, name), dict
        self.in_progress.add(name)
        steps = tuple(
            (field["name"], conv)
            for field in node.get("fields", ())
            if (conv := self.compile(field.get("type"))) is not None
        )
        self.in_progress.discard(name)
        converter = _record(steps) if steps else None
        self.memo[name] = converter
        return converter, dict

    def _union(self, branches: list[Any]) -> Converter | None:
        non_null = [b for b in branches if b != "null"]
        if len(non_null) == 1:
            inner = self.compile(non_null[0])
            return None if inner is None else _nullable(inner)
        table: dict[type, Converter] = {}
        records: list[tuple[frozenset[str], Converter | None]] = []
        map_converter: Converter | None = None
        for branch in non_null:
            converter, output = self.compile_typed(branch)
            fields = _record_fields(branch, self.named)
            if fields is not None:
                records.append((fields, converter))
            elif output is dict:
                map_converter = converter
            elif converter is not None and output is not None:
                table.setdefault(output, converter)
        dict_branches = len(records) + (1 if _has_map(non_null, self.named) else 0)
        if dict_branches == 1:
            only = records[0][1] if records else map_converter
            if only is not None:
                table[dict] = only
        elif any(conv is not None for _, conv in records) or map_converter is not None:
            table[dict] = _dict_dispatch(tuple(records), map_converter)
        if not table:
            return None
        return _dispatch(table)


def _record_fields(branch: Any, named: Mapping[str, Any]) -> frozenset[str] | None:
    node = named.get(branch) if isinstance(branch, str) else branch
    if isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
        node = node["type"]
    if isinstance(node, dict) and node.get("type") in ("record", "error"):
        return frozenset(f["name"] for f in node.get("fields", ()))
    return None


def _has_map(branches: list[Any], named: Mapping[str, Any]) -> bool:
    return any(
        isinstance(b, dict) and (b.get("type") == "map" or _is_map_wrapper(b)) for b in branches
    )


def _is_map_wrapper(node: dict[str, Any]) -> bool:
    inner = node.get("type")
    return isinstance(inner, dict) and inner.get("type") == "map"


def _interesting_names(named: Mapping[str, Any]) -> set[str]:
    """Named types that hold, at any depth, a value to convert (a fixpoint, so that
    recursive types without logical fields are never visited)."""
    direct: dict[str, bool] = {}
    refs: dict[str, set[str]] = {}
    for name, node in named.items():
        found: set[str] = set()
        direct[name] = _scan(node, found, top=True)
        refs[name] = found
    interesting = {name for name, hit in direct.items() if hit}
    changed = True
    while changed:
        changed = False
        for name, used in refs.items():
            if name not in interesting and used & interesting:
                interesting.add(name)
                changed = True
    return interesting


def _scan(node: Any, refs: set[str], *, top: bool = False) -> bool:
    """Whether ``node`` itself holds a leaf to convert; named types it uses go to refs."""
    if isinstance(node, list):
        hits = [_scan(branch, refs) for branch in node]  # every branch, for its refs
        return any(hits)
    if isinstance(node, str):
        if node not in PRIMITIVE_TYPES:
            refs.add(node)
        return node == "bytes"
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    if isinstance(kind, (dict, list)):
        return _scan(kind, refs)
    if not top and kind in NAMED_TYPES and isinstance(node.get("name"), str):
        refs.add(node["name"])
        return False
    return _scan_definition(node, kind, refs)


def _scan_definition(node: dict[str, Any], kind: Any, refs: set[str]) -> bool:
    if kind in ("record", "error"):
        hits = [_scan(field.get("type"), refs) for field in node.get("fields", ())]
        return any(hits)
    if kind == "array":
        return _scan(node.get("items"), refs)
    if kind == "map":
        return _scan(node.get("values"), refs)
    if kind == "fixed":
        return True
    if kind == "enum":
        return False
    if isinstance(kind, str) and kind in PRIMITIVE_TYPES:
        return _leaf(node, kind) is not None
    if isinstance(kind, str):
        refs.add(kind)
    return False


# ------------------------------------------------------------------------ containers


def _record(steps: tuple[tuple[str, Converter], ...]) -> Converter:
    def convert(record: Any) -> Any:
        for name, conv in steps:
            record[name] = conv(record[name])
        return record

    return convert


def _array(items: Converter) -> Converter:
    def convert(values: Any) -> Any:
        return [items(v) for v in values]

    return convert


def _map(values: Converter) -> Converter:
    def convert(mapping: Any) -> Any:
        for key, value in mapping.items():
            mapping[key] = values(value)  # replacing values while iterating is allowed
        return mapping

    return convert


def _late(memo: Mapping[str, Converter | None], name: str) -> Converter:
    def convert(value: Any) -> Any:
        conv = memo[name]
        return value if conv is None else conv(value)

    return convert


def _nullable(inner: Converter) -> Converter:
    def convert(value: Any) -> Any:
        return value if value is None else inner(value)

    return convert


def _dispatch(table: dict[type, Converter]) -> Converter:
    get = table.get

    def convert(value: Any) -> Any:
        conv = get(type(value))
        return value if conv is None else conv(value)

    return convert


def _dict_dispatch(
    records: tuple[tuple[frozenset[str], Converter | None], ...], map_converter: Converter | None
) -> Converter:
    def convert(value: Any) -> Any:
        keys = value.keys()
        for names, conv in records:
            if keys == names:
                return value if conv is None else conv(value)
        return value if map_converter is None else map_converter(value)

    return convert


def compile_plan(schema: AvroSchema, named: Mapping[str, Any] | None = None) -> Converter | None:
    """The converter for values of ``schema`` (parsed), or ``None`` if none is needed.

    ``named`` adds named types defined elsewhere (Confluent schema references).
    """
    return _Compiler(named_types(schema, named)).compile(schema)
