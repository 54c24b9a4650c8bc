"""The compiled plan against a plain full walk of the value, on generated schemas.

The reference (:func:`reference`) walks every value with its schema and formats
each leaf with code written independently of bridge/codecs/avro_logical.py; the
decoder (reading schema + plan) must give exactly the same document.
"""

from __future__ import annotations

import base64
import io
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codecs import AvroDecoder
from bridge.codecs.avro_plan import compile_plan, reading_schema

EPOCH = datetime(1970, 1, 1)

# Each logical leaf: (schema, strategy of raw values, reference formatter).
MIN_MS, MAX_MS = -62_135_596_800_000, 253_402_300_799_999


def _clock(moment: datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"


def _stamp(moment: datetime, fraction: str, zone: str) -> str:
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return f"{day}T{_clock(moment)}.{fraction}{zone}"


def _ts_ms(zone: str) -> Any:
    def fmt(v: int) -> str:
        moment = EPOCH + timedelta(milliseconds=v)
        return _stamp(moment, f"{moment.microsecond // 1000:03d}", zone)

    return fmt


def _ts_us(zone: str) -> Any:
    def fmt(v: int) -> str:
        moment = EPOCH + timedelta(microseconds=v)
        return _stamp(moment, f"{moment.microsecond:06d}", zone)

    return fmt


def _ts_ns(v: int) -> str:
    moment = EPOCH + timedelta(seconds=v // 10**9)
    return _stamp(moment, f"{v % 10**9:09d}", "Z")


def _decimal(scale: int) -> Any:
    def fmt(raw: bytes) -> str:
        n = int.from_bytes(raw, "big", signed=True)
        text = str(abs(n)).rjust(scale + 1, "0")
        body = text if scale == 0 else f"{text[:-scale]}.{text[-scale:]}"
        return ("-" if n < 0 else "") + body

    return fmt


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _signed_bytes(max_size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=1, max_size=max_size)


LEAVES: list[tuple[Any, st.SearchStrategy[Any], Any]] = [
    ("string", st.text(max_size=5), None),
    ("int", st.integers(-(2**31), 2**31 - 1), None),
    ("long", st.integers(-(2**63), 2**63 - 1), None),
    ("boolean", st.booleans(), None),
    ("double", st.floats(allow_nan=False), None),
    ("bytes", st.binary(max_size=6), _b64),
    (
        {"type": "long", "logicalType": "timestamp-millis"},
        st.integers(MIN_MS, MAX_MS),
        _ts_ms("Z"),
    ),
    (
        {"type": "long", "logicalType": "timestamp-micros"},
        st.integers(MIN_MS * 1000, MAX_MS * 1000),
        _ts_us("Z"),
    ),
    (
        {"type": "long", "logicalType": "timestamp-nanos"},
        st.integers(0, 2**63 - 1),
        _ts_ns,
    ),
    (
        {"type": "long", "logicalType": "local-timestamp-millis"},
        st.integers(MIN_MS, MAX_MS),
        _ts_ms(""),
    ),
    (
        {"type": "long", "logicalType": "local-timestamp-micros"},
        st.integers(MIN_MS * 1000, MAX_MS * 1000),
        _ts_us(""),
    ),
    (
        {"type": "int", "logicalType": "date"},
        st.integers(-719_162, 2_932_896),
        lambda v: (date(1970, 1, 1) + timedelta(days=v)).isoformat(),
    ),
    (
        {"type": "int", "logicalType": "time-millis"},
        st.integers(0, 86_399_999),
        lambda v: f"{_clock(EPOCH + timedelta(milliseconds=v))}.{v % 1000:03d}",
    ),
    (
        {"type": "long", "logicalType": "time-micros"},
        st.integers(0, 86_399_999_999),
        lambda v: f"{_clock(EPOCH + timedelta(microseconds=v))}.{v % 10**6:06d}",
    ),
    (
        {"type": "bytes", "logicalType": "decimal", "precision": 30, "scale": 2},
        _signed_bytes(12),
        _decimal(2),
    ),
    (
        {"type": "bytes", "logicalType": "decimal", "precision": 30, "scale": 0},
        _signed_bytes(12),
        _decimal(0),
    ),
    (
        {"type": "string", "logicalType": "uuid"},
        st.uuids().map(str),
        None,
    ),
]
FIXED_LEAVES: list[tuple[dict[str, Any], st.SearchStrategy[Any], Any]] = [
    ({"type": "fixed", "size": 3}, st.binary(min_size=3, max_size=3), _b64),
    (
        {"type": "fixed", "size": 5, "logicalType": "decimal", "precision": 11, "scale": 3},
        st.binary(min_size=5, max_size=5),
        _decimal(3),
    ),
    (
        {"type": "fixed", "size": 16, "logicalType": "uuid"},
        st.binary(min_size=16, max_size=16),
        lambda raw: str(uuid.UUID(bytes=raw)),
    ),
]


class Generated:
    """A schema and a strategy of (raw value to write, expected decoded document)."""

    def __init__(self, schema: Any, values: st.SearchStrategy[tuple[Any, Any]]) -> None:
        self.schema = schema
        self.values = values


@st.composite
def generated(draw: st.DrawFn, depth: int = 0, names: Any = None) -> Generated:
    names = names if names is not None else iter(range(100_000))
    choice = draw(st.integers(0, 9 if depth < 3 else 3))
    if choice <= 2:
        kind, raw, fmt = draw(st.sampled_from(LEAVES))
        return Generated(kind, raw.map(lambda v, f=fmt: (v, v if f is None else f(v))))
    if choice == 3:
        base, raw, fmt = draw(st.sampled_from(FIXED_LEAVES))
        kind = {**base, "name": f"F{next(names)}"}
        return Generated(kind, raw.map(lambda v, f=fmt: (v, f(v))))
    if choice == 4:
        inner = draw(generated(depth + 1, names))
        return Generated(
            {"type": "array", "items": inner.schema},
            st.lists(inner.values, max_size=3).map(
                lambda pairs: ([r for r, _ in pairs], [e for _, e in pairs])
            ),
        )
    if choice == 5:
        inner = draw(generated(depth + 1, names))
        return Generated(
            {"type": "map", "values": inner.schema},
            st.dictionaries(st.text(max_size=3), inner.values, max_size=3).map(
                lambda d: ({k: r for k, (r, _) in d.items()}, {k: e for k, (_, e) in d.items()})
            ),
        )
    if choice == 6:
        inner = draw(generated(depth + 1, names))
        if isinstance(inner.schema, list):
            return inner
        return Generated(
            ["null", inner.schema], st.none().map(lambda _: (None, None)) | inner.values
        )
    if choice == 7:
        # a union of a string and a timestamp: raw types str and int tell them apart
        ts = {"type": "long", "logicalType": "timestamp-millis"}
        return Generated(
            ["null", "string", ts],
            st.none().map(lambda _: (None, None))
            | st.text(max_size=3).map(lambda s: (s, s))
            | st.integers(MIN_MS, MAX_MS).map(lambda v: (v, _ts_ms("Z")(v))),
        )
    return draw(records(depth, names))


@st.composite
def records(draw: st.DrawFn, depth: int = 0, names: Any = None) -> Generated:
    names = names if names is not None else iter(range(100_000))
    field_names = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=4, unique=True))
    fields = [(name, draw(generated(depth + 1, names))) for name in field_names]
    schema = {
        "type": "record",
        "name": f"R{next(names)}",
        "fields": [{"name": name, "type": g.schema} for name, g in fields],
    }

    @st.composite
    def values(draw: st.DrawFn) -> tuple[Any, Any]:
        pairs = {name: draw(g.values) for name, g in fields}
        return {k: r for k, (r, _) in pairs.items()}, {k: e for k, (_, e) in pairs.items()}

    return Generated(schema, values())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_plan_matches_a_full_walk(data: st.DataObject) -> None:
    generated_record = data.draw(records())
    raw, expected = data.draw(generated_record.values)
    schema = fastavro.parse_schema(generated_record.schema)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, reading_schema(schema), raw)  # the raw values as they are
    assert AvroDecoder(schema).decode(out.getvalue()) == expected


def test_no_plan_without_values_to_convert() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Plain",
            "fields": [
                {"name": "a", "type": ["null", "string", "int"]},
                {
                    "name": "b",
                    "type": {"type": "map", "values": {"type": "array", "items": "long"}},
                },
                {"name": "c", "type": {"type": "enum", "name": "E", "symbols": ["X"]}},
                {"name": "d", "type": {"type": "string", "logicalType": "uuid"}},
            ],
        }
    )
    assert compile_plan(schema) is None


def test_a_plan_only_visits_what_holds_logical_types() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Outer",
            "fields": [
                {"name": "plain", "type": {"type": "array", "items": "string"}},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            ],
        }
    )
    plan = compile_plan(schema)
    assert plan is not None

    class Untouchable(list[str]):
        def __iter__(self) -> Any:
            raise AssertionError("the plan walked a field without logical types")

    value = {"plain": Untouchable(), "at": 0}
    assert plan(value) == {"plain": [], "at": "1970-01-01T00:00:00.000Z"}


def test_reading_schema_strips_logical_types_but_keeps_ambiguous_branches() -> None:
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "a", "type": ts},
                {"name": "b", "type": ["null", "int", ts]},
            ],
        }
    )
    reading = reading_schema(schema)
    assert (
        reading["fields"][0]["type"] == {"type": "long"} or reading["fields"][0]["type"] == "long"
    )
    assert reading["fields"][1]["type"][2]["logicalType"] == "timestamp-millis"
