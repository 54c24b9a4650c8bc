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
those cost more than the whole rest of the decode (a ``datetime``, ``Decimal`` or
``UUID`` object per value, only to be turned into strings), and round a decimal to
the precision of a shared decimal context.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final

Converter = Callable[[Any], Any]
"""Takes a decoded value and returns its JSON-friendly form (containers in place)."""

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_NANOS_PER_SECOND: Final = 1_000_000_000
_MILLIS_PER_DAY: Final = 86_400_000
_MICROS_PER_DAY: Final = 86_400_000_000
_MEMO_LIMIT: Final = 4096

# Timestamps are formatted from integers with these tables instead of through
# datetime.isoformat(): a timedelta, a datetime and isoformat cost ~1.1 us per
# value, the tables ~0.2 us, and a shipment record holds several. The day part
# repeats from record to record, so it is memoised.
_HOUR_MINUTE: Final = tuple(f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60))
_SECOND: Final = tuple(f"{s:02d}." for s in range(60))
_THREE_DIGITS: Final = tuple(f"{n:03d}" for n in range(1000))
_DAYS: dict[int, str] = {}


def _day(days: int) -> str:
    """``YYYY-MM-DD`` of a day number (0 is 1970-01-01), memoised."""
    text = _DAYS.get(days)
    if text is None:
        try:
            text = date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
        except ValueError:
            raise OverflowError("date out of range") from None
        if len(_DAYS) >= _MEMO_LIMIT:
            _DAYS.clear()
        _DAYS[days] = text
    return text


def _clock_millis(millis: int) -> str:
    """``HH:MM:SS.fff`` of a millisecond of the day."""
    seconds, fraction = divmod(millis, 1000)
    minutes, second = divmod(seconds, 60)
    return _HOUR_MINUTE[minutes] + _SECOND[second] + _THREE_DIGITS[fraction]


def _clock_micros(micros: int) -> str:
    """``HH:MM:SS.ffffff`` of a microsecond of the day."""
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    milli, micro = divmod(fraction, 1000)
    return _HOUR_MINUTE[minutes] + _SECOND[second] + _THREE_DIGITS[milli] + _THREE_DIGITS[micro]


def _timestamp(millis: bool, zone: str) -> Converter:
    """timestamp-millis/-micros (zone ``Z``), local-timestamp-millis/-micros (no zone)."""
    per_day = _MILLIS_PER_DAY if millis else _MICROS_PER_DAY
    clock = _clock_millis if millis else _clock_micros
    timespec = "milliseconds" if millis else "microseconds"

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            days, rest = divmod(value, per_day)  # floors: right for times before 1970
            return _day(days) + "T" + clock(rest) + zone
        if kind is datetime:  # fastavro's object, in a union that kept its logicalType
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat(timespec=timespec) + zone
        return value

    return convert


def _nanos_timestamp(zone: str) -> Converter:
    """``datetime`` stops at microseconds, so the nine digits are written by hand."""

    def convert(value: Any) -> Any:
        if type(value) is not int:
            return value
        seconds, nanos = divmod(value, _NANOS_PER_SECOND)
        days, second_of_day = divmod(seconds, 86_400)
        return f"{_day(days)}T{_clock_millis(second_of_day * 1000)[:8]}.{nanos:09d}{zone}"

    return convert


def _date(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return _day(value)
    if kind is date:
        return value.isoformat()
    return value


def _time(millis: bool) -> Converter:
    """time-millis (an int) or time-micros (a long) since midnight."""
    per_day = _MILLIS_PER_DAY if millis else _MICROS_PER_DAY
    clock = _clock_millis if millis else _clock_micros
    timespec = "milliseconds" if millis else "microseconds"

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is int:
            if not 0 <= value < per_day:
                raise OverflowError("time of day out of range")
            return clock(value)
        if kind is time:
            return value.isoformat(timespec=timespec)
        return value

    return convert


def _decimal(scale: int) -> Converter:
    # Memoised per raw value: prices repeat (the same SKU in many orders), and a
    # dict lookup is 15 times cheaper than the integer conversion and formatting.
    memo: dict[bytes, str] = {}

    def convert(value: Any) -> Any:
        kind = type(value)
        if kind is bytes:
            text = memo.get(value)
            if text is None:
                text = format_unscaled(int.from_bytes(value, "big", signed=True), scale)
                if len(memo) >= _MEMO_LIMIT:
                    memo.clear()
                memo[value] = text
            return text
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
    "timestamp-millis": Leaf(_timestamp(millis=True, zone="Z"), int, datetime),
    "timestamp-micros": Leaf(_timestamp(millis=False, zone="Z"), int, datetime),
    "timestamp-nanos": Leaf(_nanos_timestamp("Z"), int),
    "local-timestamp-millis": Leaf(_timestamp(millis=True, zone=""), int, datetime),
    "local-timestamp-micros": Leaf(_timestamp(millis=False, zone=""), int, datetime),
    "local-timestamp-nanos": Leaf(_nanos_timestamp(""), int),
    "time-micros": Leaf(_time(millis=False), int, time),
}
_INT_LEAVES: Final = {
    "date": Leaf(_date, int, date),
    "time-millis": Leaf(_time(millis=True), int, time),
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
_UUID_STRING: Final = Leaf(None, str)  # read as the string it is: nothing to do
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
