"""The JSON-friendly form of Avro's logical types and binary values.

Rules are JMESPath over JSON-like documents and the Vibes body is JSON, so every
Avro value that is not already a JSON value becomes a string:

================================  ====================================================
Avro type                          string
================================  ====================================================
``timestamp-millis``               ``2026-11-27T10:00:00.123Z`` (UTC; always 3 fraction digits)
``timestamp-micros``               ``2026-11-27T10:00:00.123456Z`` (UTC; always 6)
``timestamp-nanos``                ``2026-11-27T10:00:00.123456789Z`` (UTC; always 9)
``local-timestamp-millis``         ``2026-11-27T10:00:00.123`` (no ``Z``: it is the
                                   writer's local time, in no stated zone)
``local-timestamp-micros/nanos``   likewise, with 6 / 9 fraction digits
``date``                           ``2026-11-27``
``time-millis``                    ``10:00:00.123``
``time-micros``                    ``10:00:00.123456`` (6 digits, so nothing is lost)
``decimal`` (bytes or fixed)       plain notation with exactly ``scale`` fraction
                                   digits: ``12.50``, ``-0.05``, ``1250`` (scale 0);
                                   exact (integer arithmetic), never an exponent
``uuid`` (string)                  the string as written
``uuid`` (fixed 16)                ``123e4567-e89b-12d3-a456-426614174000``
``bytes``, ``fixed`` (others)      standard base64 with padding (RFC 4648 section 4), the
                                   usual JSON form of binary data (Kafka Connect,
                                   protobuf's JSON mapping); lossless, unlike latin-1
================================  ====================================================

Years have four digits; a date or timestamp outside years 1 to 9999, or a time of
day outside 00:00 to 24:00, is a decode error (``value_out_of_range``).

Each converter here takes the *raw* Avro value (the bridge reads with the logical
types stripped, see :mod:`bridge.codecs.avro_plan`) and also the object fastavro
makes when it does convert (``datetime``, ``Decimal`` ...), and returns any other
value unchanged: so a reader-schema default or an evolved writer never breaks it.
They are written by hand rather than taken from fastavro's logical readers because
those cost more than the whole rest of the decode (a ``Decimal`` and a ``UUID``
object per value, only to be turned into strings) and round a decimal to the
context's precision.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

Converter = Callable[[Any], Any]
"""Takes a decoded value and returns its JSON-friendly form (containers in place)."""

_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_NANOS_PER_SECOND: Final = 1_000_000_000
_MICROS_PER_DAY: Final = 86_400_000_000


def _delta(value: int, millis: bool) -> timedelta:
    return timedelta(milliseconds=value) if millis else timedelta(microseconds=value)


def _utc_timestamp(timespec: str, millis: bool) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            # Naive arithmetic and a literal "Z": the same instant, a third cheaper
            # than an aware datetime whose "+00:00" would have to be cut off.
            return (_EPOCH_NAIVE + _delta(value, millis)).isoformat(timespec=timespec) + "Z"
        if kind is datetime:
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
        return value

    return convert


def _local_timestamp(timespec: str, millis: bool) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            return (_EPOCH_NAIVE + _delta(value, millis)).isoformat(timespec=timespec)
        if kind is datetime:
            return value.replace(tzinfo=None).isoformat(timespec=timespec)
        return value

    return convert


def _nanos_timestamp(zone: str) -> Converter:
    """``datetime`` stops at microseconds, so the nine digits are written by hand."""

    def convert(value: Any) -> Any:
        if type(value) is not int:
            return value
        seconds, nanos = divmod(value, _NANOS_PER_SECOND)
        moment = _EPOCH_NAIVE + timedelta(seconds=seconds)
        return f"{moment.isoformat(timespec='seconds')}.{nanos:09d}{zone}"

    return convert


def _date(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return date.fromordinal(_EPOCH_ORDINAL + value).isoformat()
    if kind is date:
        return value.isoformat()
    return value


def _time(timespec: str, micros_per_unit: int) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            micros = value * micros_per_unit
            if not 0 <= micros < _MICROS_PER_DAY:
                raise OverflowError("time of day out of range")
            moment = _EPOCH_NAIVE + timedelta(microseconds=micros)
            return moment.time().isoformat(timespec=timespec)
        if kind is time:
            return value.isoformat(timespec=timespec)
        return value

    return convert


def _decimal(scale: int) -> Converter:
    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is bytes:
            return format_unscaled(int.from_bytes(value, "big", signed=True), scale)
        if kind is Decimal:
            return format(value, "f")  # "f": plain notation, never "1E-7"
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
    if type(value) is bytes and len(value) == 16:
        return str(uuid.UUID(bytes=value))
    return value


def _base64(value: Any) -> Any:
    if type(value) is bytes:
        # b2a_base64 is base64.b64encode without its Python-level wrapper.
        return binascii.b2a_base64(value, newline=False).decode("ascii")
    return value


@dataclass(frozen=True, slots=True)
class Leaf:
    """How one primitive or fixed type is made JSON-friendly.

    ``raw`` is the Python type fastavro gives with the logical type stripped;
    ``typed`` the type it gives when it converts (``None`` if it never does).
    Unions dispatch on them.
    """

    convert: Converter | None
    raw: type
    typed: type | None = None


_LONG_LEAVES: Final = {
    "timestamp-millis": Leaf(_utc_timestamp("milliseconds", True), int, datetime),
    "timestamp-micros": Leaf(_utc_timestamp("microseconds", False), int, datetime),
    "timestamp-nanos": Leaf(_nanos_timestamp("Z"), int),
    "local-timestamp-millis": Leaf(_local_timestamp("milliseconds", True), int, datetime),
    "local-timestamp-micros": Leaf(_local_timestamp("microseconds", False), int, datetime),
    "local-timestamp-nanos": Leaf(_nanos_timestamp(""), int),
    "time-micros": Leaf(_time("microseconds", 1), int, time),
}
_INT_LEAVES: Final = {
    "date": Leaf(_date, int, date),
    "time-millis": Leaf(_time("milliseconds", 1000), int, time),
}
_PLAIN: Final = {
    "null": Leaf(None, type(None)),
    "boolean": Leaf(None, bool),
    "int": Leaf(None, int),
    "long": Leaf(None, int),
    "float": Leaf(None, float),
    "double": Leaf(None, float),
    "string": Leaf(None, str),
    "enum": Leaf(None, str),
    "bytes": Leaf(_base64, bytes),
    "fixed": Leaf(_base64, bytes),
}
_UUID_STRING: Final = Leaf(_uuid_string, str, uuid.UUID)
_UUID_FIXED: Final = Leaf(_uuid_fixed, bytes)


def leaf_for(node: Mapping[str, Any] | str) -> Leaf | None:
    """The leaf of a primitive, enum or fixed type (a name or a dict); ``None`` for
    records, arrays, maps and unions."""
    if isinstance(node, str):
        return _PLAIN.get(node)
    base = node.get("type")
    if not isinstance(base, str) or base not in _PLAIN:
        return None
    logical = node.get("logicalType")
    found: Leaf | None = None
    if base == "long" and isinstance(logical, str):
        found = _LONG_LEAVES.get(logical)
    elif base == "int" and isinstance(logical, str):
        found = _INT_LEAVES.get(logical)
    elif base == "string" and logical == "uuid":
        found = _UUID_STRING
    elif base in ("bytes", "fixed") and logical == "decimal":
        found = Leaf(_decimal(int(node.get("scale", 0))), bytes, Decimal)
    elif base == "fixed" and logical == "uuid" and node.get("size") == 16:
        found = _UUID_FIXED
    return found or _PLAIN[base]
