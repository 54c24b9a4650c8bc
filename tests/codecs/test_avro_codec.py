"""The avro codec: schemaless bodies, logical types as documented, garbage refused."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codecs import AvroDecoder, AvroSchema, load_avro_schema, make_decoder
from bridge.errors import DecodeError
from devtools.avro_encode import encode_avro
from tests.codecs.helpers import assert_dict_or_decode_error
from tests.support.paths import SCHEMAS


def _schema(*fields: dict[str, Any], name: str = "T") -> AvroSchema:
    return fastavro.parse_schema({"type": "record", "name": name, "fields": list(fields)})


def _write(schema: AvroSchema, value: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, value)
    return out.getvalue()


def _field(name: str, kind: Any) -> dict[str, Any]:
    return {"name": name, "type": kind}


LOGICAL = _schema(
    _field("ts_ms", {"type": "long", "logicalType": "timestamp-millis"}),
    _field("ts_us", {"type": "long", "logicalType": "timestamp-micros"}),
    _field("ts_ns", {"type": "long", "logicalType": "timestamp-nanos"}),
    _field("local_ms", {"type": "long", "logicalType": "local-timestamp-millis"}),
    _field("local_us", {"type": "long", "logicalType": "local-timestamp-micros"}),
    _field("day", {"type": "int", "logicalType": "date"}),
    _field("t_ms", {"type": "int", "logicalType": "time-millis"}),
    _field("t_us", {"type": "long", "logicalType": "time-micros"}),
    _field("price", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}),
    _field(
        "fixed_price",
        {
            "type": "fixed",
            "name": "Money",
            "size": 8,
            "logicalType": "decimal",
            "precision": 18,
            "scale": 4,
        },
    ),
    _field("whole", {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 0}),
    _field("id", {"type": "string", "logicalType": "uuid"}),
    _field("raw_id", {"type": "fixed", "name": "Uuid16", "size": 16, "logicalType": "uuid"}),
    _field("blob", "bytes"),
    _field("digest", {"type": "fixed", "name": "Digest", "size": 4}),
)

MOMENT = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC)
UUID = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")


def test_logical_types_come_out_as_the_documented_strings() -> None:
    data = _write(
        LOGICAL,
        {
            "ts_ms": MOMENT,
            "ts_us": MOMENT,
            "ts_ns": 1_795_773_600_123_456_789,
            "local_ms": datetime(2026, 11, 27, 10, 0, 0, 123000),
            "local_us": datetime(2026, 11, 27, 10, 0, 0, 123456),
            "day": date(2026, 11, 27),
            "t_ms": time(10, 0, 0, 123000),
            "t_us": time(10, 0, 0, 123456),
            "price": Decimal("12.50"),
            "fixed_price": Decimal("-0.0500"),
            "whole": Decimal("1250"),
            "id": str(UUID),
            "raw_id": UUID.bytes,
            "blob": b"\x00\xffhi",
            "digest": b"\xde\xad\xbe\xef",
        },
    )
    assert AvroDecoder(LOGICAL).decode(data) == {
        "ts_ms": "2026-11-27T10:00:00.123Z",
        "ts_us": "2026-11-27T10:00:00.123456Z",
        "ts_ns": "2026-11-27T10:00:00.123456789Z",
        "local_ms": "2026-11-27T10:00:00.123",
        "local_us": "2026-11-27T10:00:00.123456",
        "day": "2026-11-27",
        "t_ms": "10:00:00.123",
        "t_us": "10:00:00.123456",
        "price": "12.50",
        "fixed_price": "-0.0500",
        "whole": "1250",
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "raw_id": "123e4567-e89b-12d3-a456-426614174000",
        "blob": "AP9oaQ==",
        "digest": "3q2+7w==",
    }


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1_795_773_600_000, "2026-11-27T10:00:00.000Z"),
        (-62_135_596_800_000, "0001-01-01T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ],
)
def test_timestamp_millis_edges(millis: int, text: str) -> None:
    schema = _schema(_field("t", {"type": "long", "logicalType": "timestamp-millis"}))
    assert AvroDecoder(schema).decode(_write(schema, {"t": millis})) == {"t": text}


@pytest.mark.parametrize(
    ("unscaled", "scale", "text"),
    [
        (0, 2, "0.00"),
        (5, 2, "0.05"),
        (-5, 2, "-0.05"),
        (1, 10, "0.0000000001"),
        (123456789012345678901234567890, 3, "123456789012345678901234567.890"),
        (-1250, 0, "-1250"),
    ],
)
def test_decimals_are_exact(unscaled: int, scale: int, text: str) -> None:
    schema = _schema(
        _field("d", {"type": "bytes", "logicalType": "decimal", "precision": 40, "scale": scale})
    )
    raw = unscaled.to_bytes((unscaled.bit_length() + 8) // 8 or 1, "big", signed=True)
    assert AvroDecoder(schema).decode(_write(schema, {"d": raw})) == {"d": text}


def test_an_empty_decimal_is_zero() -> None:
    schema = _schema(
        _field("d", {"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2})
    )
    assert AvroDecoder(schema).decode(b"\x00") == {"d": "0.00"}


def test_logical_types_inside_nested_records_arrays_maps_and_unions() -> None:
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    inner = {"type": "record", "name": "Inner", "fields": [_field("at", ts), _field("n", "int")]}
    schema = _schema(
        _field("one", inner),
        _field("many", {"type": "array", "items": "Inner"}),
        _field("by_key", {"type": "map", "values": ["null", "Inner"]}),
        _field("maybe", ["null", "Inner"]),
        _field("choice", ["null", "string", ts, {"type": "array", "items": "bytes"}]),
        _field("days", {"type": "map", "values": {"type": "int", "logicalType": "date"}}),
    )
    value = {
        "one": {"at": 0, "n": 1},
        "many": [{"at": 1000, "n": 2}, {"at": 2000, "n": 3}],
        "by_key": {"a": {"at": 3000, "n": 4}, "b": None},
        "maybe": None,
        "choice": 4000,
        "days": {"x": 0, "y": 1},
    }
    decoder = AvroDecoder(schema)
    assert decoder.decode(_write(schema, value)) == {
        "one": {"at": "1970-01-01T00:00:00.000Z", "n": 1},
        "many": [
            {"at": "1970-01-01T00:00:01.000Z", "n": 2},
            {"at": "1970-01-01T00:00:02.000Z", "n": 3},
        ],
        "by_key": {"a": {"at": "1970-01-01T00:00:03.000Z", "n": 4}, "b": None},
        "maybe": None,
        "choice": "1970-01-01T00:00:04.000Z",
        "days": {"x": "1970-01-01", "y": "1970-01-02"},
    }
    assert decoder.decode(_write(schema, {**value, "choice": "text"}))["choice"] == "text"
    assert decoder.decode(_write(schema, {**value, "choice": [b"\x01"]}))["choice"] == ["AQ=="]


def test_a_union_whose_branches_share_a_raw_type_keeps_them_apart() -> None:
    # int and a timestamp (a long) both read as Python ints without the logical
    # type, so this union keeps it: the plain int stays an int.
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    day = {"type": "int", "logicalType": "date"}
    schema = _schema(_field("u", ["null", "int", ts]), _field("v", [ts, day]))
    decoder = AvroDecoder(schema)
    out = _write(schema, {"u": 5, "v": date(2026, 11, 27)})
    assert decoder.decode(out) == {"u": 5, "v": "2026-11-27"}
    out = _write(schema, {"u": MOMENT, "v": MOMENT})
    assert decoder.decode(out) == {
        "u": "2026-11-27T10:00:00.123Z",
        "v": "2026-11-27T10:00:00.123Z",
    }


def test_a_union_of_records_is_told_apart_by_field_names() -> None:
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    a = {"type": "record", "name": "A", "fields": [_field("at", ts)]}
    b = {"type": "record", "name": "B", "fields": [_field("at", "long"), _field("b", "int")]}
    schema = _schema(_field("x", [a, b, {"type": "map", "values": "bytes"}]))
    decoder = AvroDecoder(schema)
    assert decoder.decode(_write(schema, {"x": {"at": 0}})) == {
        "x": {"at": "1970-01-01T00:00:00.000Z"}
    }
    assert decoder.decode(_write(schema, {"x": {"at": 0, "b": 1}})) == {"x": {"at": 0, "b": 1}}
    as_map = _write(schema, {"x": {"k": b"\x01", "j": b"\x02"}})
    assert decoder.decode(as_map) == {"x": {"k": "AQ==", "j": "Ag=="}}


def test_recursive_schemas_decode() -> None:
    schema = fastavro.parse_schema(
        {
            "type": "record",
            "name": "Node",
            "fields": [
                _field("at", {"type": "long", "logicalType": "timestamp-millis"}),
                _field("next", ["null", "Node"]),
            ],
        }
    )
    value = {"at": 0, "next": {"at": 1, "next": None}}
    assert AvroDecoder(schema).decode(_write(schema, value)) == {
        "at": "1970-01-01T00:00:00.000Z",
        "next": {"at": "1970-01-01T00:00:00.001Z", "next": None},
    }


def test_a_schema_without_logical_types_needs_no_plan() -> None:
    schema = _schema(_field("a", "string"), _field("b", {"type": "array", "items": "int"}))
    decoder = AvroDecoder(schema)
    assert decoder._plan is None
    assert decoder.decode(_write(schema, {"a": "x", "b": [1, 2]})) == {"a": "x", "b": [1, 2]}


def test_the_shipment_example_round_trips(
    shipment_schema: AvroSchema, shipment_example: dict[str, Any]
) -> None:
    data = encode_avro(shipment_schema, shipment_example)
    decoded = make_decoder("avro", schema=shipment_schema).decode(data)
    assert decoded == shipment_example
    decoded["_kafka"] = {"topic": "shop.shipments"}  # the caller may mutate it
    assert "_kafka" not in make_decoder("avro", schema=shipment_schema).decode(data)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda data: data[:-1], "truncated"),
        (lambda data: data[:10], "truncated"),
        (lambda data: b"", "truncated"),
        (lambda data: data + b"\x00", "trailing_bytes"),
        (lambda data: data + b"garbage!", "trailing_bytes"),
    ],
)
def test_truncated_and_overlong_bodies_are_decode_errors(
    shipment_schema: AvroSchema, shipment_example: dict[str, Any], mutate: Any, code: str
) -> None:
    data = mutate(encode_avro(shipment_schema, shipment_example))
    with pytest.raises(DecodeError) as caught:
        AvroDecoder(shipment_schema).decode(data)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("schema", "data", "code"),
    [
        (_schema(_field("s", "string")), None, "null_value"),
        (_schema(_field("s", "string")), b"\x04\xff\xfe", "invalid_utf8"),
        (
            _schema(_field("s", "string")),
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            "truncated",
        ),
        # a negative length: fastavro reports it as the end of the data
        (_schema(_field("s", "string")), b"\x03", "truncated"),
        (_schema(_field("u", ["null", "int"])), b"\x08", "invalid_avro"),  # branch 4 of 2
        (
            _schema(_field("e", {"type": "enum", "name": "E", "symbols": ["A"]})),
            b"\x06",
            "invalid_avro",
        ),
        (
            _schema(_field("d", {"type": "int", "logicalType": "date"})),
            b"\xfe\xff\xff\xff\x0f",  # 2**31 - 1 days after 1970
            "value_out_of_range",
        ),
        (
            _schema(_field("t", {"type": "long", "logicalType": "timestamp-millis"})),
            b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            "value_out_of_range",
        ),
        (
            _schema(_field("t", {"type": "int", "logicalType": "time-millis"})),
            b"\x01",  # -1 ms
            "value_out_of_range",
        ),
    ],
)
def test_garbage_gives_a_decode_error_with_a_code(
    schema: AvroSchema, data: bytes | None, code: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        AvroDecoder(schema).decode(data)
    assert caught.value.code == code
    assert "\n" not in caught.value.message


def test_a_huge_length_prefix_is_truncated_not_a_memory_error() -> None:
    schema = _schema(_field("b", "bytes"))
    with pytest.raises(DecodeError) as caught:
        AvroDecoder(schema).decode(b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f" + b"x" * 10)
    assert caught.value.code in ("truncated", "invalid_avro")


def test_make_decoder_needs_a_schema_for_avro() -> None:
    with pytest.raises(ValueError, match="schema"):
        make_decoder("avro")
    with pytest.raises(ValueError, match="unknown format"):
        make_decoder("thrift")
    with pytest.raises(ValueError, match="descriptor set file and a message name"):
        make_decoder("protobuf")
    with pytest.raises(ValueError, match="needs message: with its descriptor set"):
        make_decoder("confluent-protobuf", schema_path=Path("x.desc"), registry_url="http://r")
    for registry_format in ("confluent-protobuf", "confluent-json"):
        with pytest.raises(ValueError, match="Schema Registry URL"):
            make_decoder(registry_format)


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_fuzz_the_shipment_decoder(data: bytes) -> None:
    decoder = _SHIPMENT_DECODER
    assert_dict_or_decode_error(decoder.decode, data)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_fuzz_the_logical_types_decoder(data: bytes) -> None:
    assert_dict_or_decode_error(_LOGICAL_DECODER.decode, data)


_SHIPMENT_DECODER = AvroDecoder(load_avro_schema(SCHEMAS / "shipment_event.avsc"))
_LOGICAL_DECODER = AvroDecoder(LOGICAL)
