"""The protobuf and confluent-protobuf codecs.

Records are made by the ``protobuf`` library (schemaless) and by confluent-kafka's
own ProtobufSerializer against the test Schema Registry (confluent-protobuf), which
registers order.proto's import (address.proto) as a reference of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.codecs import (
    ConfluentProtobufDecoder,
    ProtobufDecoder,
    SchemaFileError,
    SchemaRegistryClient,
    load_message_descriptor,
    make_decoder,
)
from bridge.codecs.protobuf_codec import MAX_MESSAGE_INDEXES
from bridge.errors import DecodeError, SchemaRegistryUnavailable
from tests.codecs.helpers import assert_dict_or_decode_error
from tests.support.hostile_http import Misbehaviour, hostile_server
from tests.support.protobuf import (
    ORDER_DESC,
    ORDER_DICT,
    message_classes,
    order_event,
    protobuf_serialize,
)
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)

ORDER = "shop.OrderEvent"


@pytest.fixture(scope="module")
def registry() -> Iterator[TestSchemaRegistry]:
    with running_schema_registry() as running:
        yield running


@pytest.fixture(scope="module")
def framed(registry: TestSchemaRegistry) -> bytes:
    """The full order, as confluent-kafka's serializer frames it (message index [1])."""
    return protobuf_serialize(registry.url, "orders", order_event())


@pytest.fixture(scope="module")
def decoder(registry: TestSchemaRegistry) -> Iterator[ConfluentProtobufDecoder]:
    with SchemaRegistryClient(registry.url) as client:
        yield ConfluentProtobufDecoder(client)


def _schemaless() -> ProtobufDecoder:
    decoder = make_decoder("protobuf", schema_path=ORDER_DESC, message=ORDER)
    assert isinstance(decoder, ProtobufDecoder)
    return decoder


# The mapping to plain dicts.


def test_a_schemaless_message_becomes_the_documented_dict() -> None:
    assert _schemaless().decode(order_event().SerializeToString()) == ORDER_DICT


def test_unset_fields_follow_presence_defaults_present_messages_absent() -> None:
    value = _schemaless().decode(b"")
    # Fields without presence hold their defaults; enums by name, 64-bit ints as ints.
    assert value["order_id"] == ""
    assert value["status"] == "STATUS_UNSPECIFIED"
    assert value["total_micros"] == 0
    assert value["items"] == []
    assert value["attributes"] == {}
    # Messages, wrappers, optional and oneof members only when set.
    for absent in ("customer", "placed_at", "coupon", "note", "pickup_store", "ship_to"):
        assert absent not in value


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("weight_kg", float("inf"), "Infinity"),
        ("weight_kg", float("-inf"), "-Infinity"),
        ("rating", float("nan"), "NaN"),
        ("status", 42, 42),  # a number the enum does not name stays the number
        ("note", "", ""),  # optional: present when set, even to the default
    ],
)
def test_values_json_cannot_hold_take_the_json_mappings_form(
    field: str, value: Any, expected: Any
) -> None:
    order = order_event()
    setattr(order, field, value)
    assert _schemaless().decode(order.SerializeToString())[field] == expected


def test_map_keys_and_nested_oneof_messages() -> None:
    order: Any = order_event()
    order.ship_to.city = "Shelbyville"  # replaces pickup_store in the oneof
    value = _schemaless().decode(order.SerializeToString())
    assert "pickup_store" not in value
    assert value["ship_to"]["city"] == "Shelbyville"


def test_the_decoded_dict_is_fresh_each_time() -> None:
    decoder, data = _schemaless(), order_event().SerializeToString()
    first = decoder.decode(data)
    first["items"].append("x")
    first["customer"]["id"] = "changed"
    assert decoder.decode(data) == ORDER_DICT


# The Confluent wire format, with the schema from the registry.


def test_records_from_confluents_serializer_decode_with_the_imported_message(
    registry: TestSchemaRegistry, framed: bytes, decoder: ConfluentProtobufDecoder
) -> None:
    assert framed[5:7] == b"\x02\x02"  # one index, 1: the file's second message
    assert decoder.decode(framed) == ORDER_DICT
    paths = [path for _, path in registry.requests]
    # The import came from its own subject, as the serialized descriptor.
    assert any(p.startswith("/subjects/address.proto/versions/") for p in paths), paths


def test_each_message_of_a_file_is_found_by_its_indexes(
    registry: TestSchemaRegistry, decoder: ConfluentProtobufDecoder
) -> None:
    classes = message_classes()
    shipment = classes["shop.ShipmentEvent"](shipment_id="SHP-1", order_status=3)
    data = protobuf_serialize(registry.url, "shipments", shipment)
    assert decoder.decode(data) == {
        "shipment_id": "SHP-1",
        "order_id": "",
        "order_status": "CANCELLED",
    }
    # The single 0 byte is the file's first message (shop.Customer).
    schema_id = int.from_bytes(data[1:5], "big")
    customer = classes["shop.Customer"](id="C-1").SerializeToString()
    assert decoder.decode(confluent_frame(schema_id, b"\x00" + customer))["id"] == "C-1"
    # The long form [0] names the same message.
    assert decoder.decode(confluent_frame(schema_id, b"\x02\x00" + customer))["id"] == "C-1"


def test_a_writer_schema_is_fetched_once(
    registry: TestSchemaRegistry, framed: bytes, decoder: ConfluentProtobufDecoder
) -> None:
    decoder.decode(framed)
    registry.clear_requests()
    for _ in range(5):
        decoder.decode(framed)
    assert registry.requests == []


def test_a_reader_descriptor_reads_payloads_as_its_message(
    registry: TestSchemaRegistry, framed: bytes
) -> None:
    reader = load_message_descriptor(ORDER_DESC, ORDER)
    with SchemaRegistryClient(registry.url) as client:
        decoder = make_decoder("confluent-protobuf", schema=reader, registry=client)
        assert decoder.decode(framed) == ORDER_DICT


# Hostile inputs: each a categorised DecodeError, never a crash.


@pytest.mark.parametrize(
    ("indexes", "code"),
    [
        (b"\x02\x0a", "bad_message_index"),  # [5]: the file has three messages
        # [1, 5]: OrderEvent nests three messages (Item and the two maps' entries)
        (b"\x04\x02\x0a", "bad_message_index"),
        (b"\x02\x01", "bad_message_index"),  # [-1]
        (b"\x01", "bad_message_index"),  # a count of -1
        (bytes([0x80, 0x02]), "bad_message_index"),  # a count of 128
        (b"\xff" * 11, "bad_message_index"),  # a varint longer than 10 bytes
        (b"\x04\x02", "truncated"),  # two indexes announced, one there
        (b"", "truncated"),  # the header alone
    ],
)
def test_wrong_message_indexes_are_decode_errors(
    framed: bytes, decoder: ConfluentProtobufDecoder, indexes: bytes, code: str
) -> None:
    payload = b"" if code == "truncated" else framed[7:]
    with pytest.raises(DecodeError) as raised:
        decoder.decode(framed[:5] + indexes + payload)
    assert raised.value.code == code


def test_as_many_indexes_as_allowed_still_parse_then_fail_on_the_missing_message(
    framed: bytes, decoder: ConfluentProtobufDecoder
) -> None:
    assert MAX_MESSAGE_INDEXES == 64  # a count of 64 is zigzag 128: varint 0x80 0x01
    deep = b"\x80\x01" + b"\x00" * MAX_MESSAGE_INDEXES  # [0, 0, ...]: Customer has no nested
    with pytest.raises(DecodeError) as raised:
        decoder.decode(framed[:5] + deep + framed[7:])
    assert raised.value.code == "bad_message_index"
    assert "name no message" in raised.value.message
    too_many = b"\x82\x01" + b"\x00" * (MAX_MESSAGE_INDEXES + 1)
    with pytest.raises(DecodeError) as refused:
        decoder.decode(framed[:5] + too_many + framed[7:])
    assert "not 1 to 64" in refused.value.message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, "null_value"),
        (b"\x00\x00\x00", "truncated"),
        (b"\x01\x00\x00\x00\x01\x00", "bad_magic_byte"),
        (confluent_frame(999_999, b"\x00"), "unknown_schema_id"),
    ],
)
def test_bytes_without_a_known_header_are_decode_errors(
    decoder: ConfluentProtobufDecoder, data: bytes | None, code: str
) -> None:
    with pytest.raises(DecodeError) as raised:
        decoder.decode(data)
    assert raised.value.code == code


@pytest.mark.parametrize(
    "payload",
    [
        b"\x0a\x10abc",  # a string field announcing 16 bytes, 3 there
        b"\x0a\x02\xff\xfe",  # invalid UTF-8 in a proto3 string
        b"\x1a" + b"\xff" * 11,  # a length varint that never ends
        b"\x07",  # wire type 7 does not exist
    ],
)
def test_malformed_payloads_are_invalid_protobuf(
    framed: bytes, decoder: ConfluentProtobufDecoder, payload: bytes
) -> None:
    with pytest.raises(DecodeError) as raised:
        decoder.decode(framed[:7] + payload)
    assert raised.value.code == "invalid_protobuf"
    with pytest.raises(DecodeError) as schemaless:
        _schemaless().decode(payload)
    assert schemaless.value.code == "invalid_protobuf"


def test_nesting_deeper_than_the_parsers_limit_is_an_error_not_a_crash() -> None:
    # Customer.address (field 5) inside itself is not possible, so nest unknown groups:
    # a start-group tag repeated far past protobuf's recursion limit (100).
    payload = b"\x0b" * 10_000
    with pytest.raises(DecodeError) as raised:
        _schemaless().decode(payload)
    assert raised.value.code == "invalid_protobuf"


def test_a_schema_of_another_type_is_unsupported(
    registry: TestSchemaRegistry, decoder: ConfluentProtobufDecoder
) -> None:
    json_id = registry.register("j", '{"type": "object"}', schema_type="JSON")
    with pytest.raises(DecodeError) as raised:
        decoder.decode(confluent_frame(json_id, b"\x00"))
    assert raised.value.code == "unsupported_schema_type"


@pytest.mark.parametrize("text", ["not base64!", "AAEC"])  # the second is base64, not a file
def test_an_unreadable_registry_descriptor_is_invalid_registry_schema(
    registry: TestSchemaRegistry, decoder: ConfluentProtobufDecoder, text: str
) -> None:
    schema_id = registry.register(f"bad-{text}", text, schema_type="PROTOBUF")
    with pytest.raises(DecodeError) as raised:
        decoder.decode(confluent_frame(schema_id, b"\x00"))
    assert raised.value.code == "invalid_registry_schema"


def test_a_missing_reference_is_unknown_schema_reference(
    registry: TestSchemaRegistry, framed: bytes, decoder: ConfluentProtobufDecoder
) -> None:
    text = registry.state.schemas[int.from_bytes(framed[1:5], "big")]["schema"]
    missing = [{"name": "address.proto", "subject": "nowhere", "version": 1}]
    schema_id = registry.register("dangling", text, schema_type="PROTOBUF", references=missing)
    with pytest.raises(DecodeError) as raised:
        decoder.decode(confluent_frame(schema_id, b"\x00"))
    assert raised.value.code == "unknown_schema_reference"


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(min_value=0, max_value=400))
def test_every_truncation_is_a_dict_or_a_decode_error(cut: int) -> None:
    data = order_event().SerializeToString()
    assert_dict_or_decode_error(_schemaless().decode, data[: min(cut, len(data))])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    garbage=st.binary(max_size=200),
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
)
def test_garbage_and_flipped_bytes_are_a_dict_or_a_decode_error(
    registry: TestSchemaRegistry,
    framed: bytes,
    decoder: ConfluentProtobufDecoder,
    garbage: bytes,
    flips: list[tuple[int, int]],
) -> None:
    assert_dict_or_decode_error(decoder.decode, framed[:5] + garbage)
    assert_dict_or_decode_error(_schemaless().decode, garbage)
    flipped = bytearray(framed)
    for position, mask in flips:
        index = 5 + position % (len(framed) - 5)  # keep the id: a known schema
        flipped[index] ^= mask
    assert_dict_or_decode_error(decoder.decode, bytes(flipped))


# The registry's Protobuf and JSON Schema fetches keep the client's bounds.


@pytest.mark.parametrize("fetch", ["protobuf_files", "json_schema"])
def test_new_registry_fetches_end_within_the_deadline(fetch: str) -> None:
    with hostile_server(Misbehaviour.TRICKLE_BODY) as server:
        client = SchemaRegistryClient(server.url, timeout=0.5)
        started = time.monotonic()
        with client, pytest.raises(SchemaRegistryUnavailable):
            getattr(client, fetch)(7)
        assert time.monotonic() - started < 10.0


# Descriptor set files (the protobuf format's schema:).


@pytest.mark.parametrize(
    ("content", "message", "expected"),
    [
        (None, ORDER, "does not exist"),
        (b"not a descriptor set \xff", ORDER, "is not a descriptor set"),
        (b"", ORDER, "is not a descriptor set"),
        ("order", "shop.Nope", "has no message 'shop.Nope' (it has: shop.Customer"),
    ],
)
def test_unusable_descriptor_sets_are_schema_file_errors(
    tmp_path: Path, content: bytes | str | None, message: str, expected: str
) -> None:
    path = tmp_path / "x.desc"
    if content == "order":
        path = ORDER_DESC
    elif isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SchemaFileError) as raised:
        load_message_descriptor(path, message)
    assert expected in str(raised.value)


def test_a_descriptor_set_without_its_imports_is_a_schema_file_error(tmp_path: Path) -> None:
    from google.protobuf import descriptor_pb2

    full = descriptor_pb2.FileDescriptorSet.FromString(ORDER_DESC.read_bytes())
    partial = descriptor_pb2.FileDescriptorSet(
        file=[f for f in full.file if f.name != "address.proto"]
    )
    path = tmp_path / "partial.desc"
    path.write_bytes(partial.SerializeToString())
    with pytest.raises(SchemaFileError) as raised:
        load_message_descriptor(path, ORDER)
    assert "imports address.proto, which is not included" in str(raised.value)


# The hand-written Timestamp form is exactly the library's.


@settings(max_examples=500, deadline=None)
@given(
    seconds=st.integers(min_value=-62_135_596_800, max_value=253_402_300_799),
    nanos=st.one_of(
        st.integers(min_value=0, max_value=999_999_999),
        st.integers(min_value=0, max_value=999).map(lambda n: n * 1_000_000),
        st.integers(min_value=0, max_value=999_999).map(lambda n: n * 1_000),
    ),
)
def test_timestamps_are_written_exactly_as_the_json_mapping_writes_them(
    seconds: int, nanos: int
) -> None:
    order: Any = order_event()
    order.placed_at.seconds = seconds
    order.placed_at.nanos = nanos
    expected = order.placed_at.ToJsonString()
    assert _schemaless().decode(order.SerializeToString())["placed_at"] == expected


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (0, -1), (0, 1_000_000_000)],
)
def test_timestamps_beyond_the_json_mappings_range_are_invalid_protobuf(
    seconds: int, nanos: int
) -> None:
    order: Any = order_event()
    order.placed_at.seconds = seconds
    order.placed_at.nanos = nanos
    with pytest.raises(DecodeError) as raised:
        _schemaless().decode(order.SerializeToString())
    assert raised.value.code == "invalid_protobuf"


def test_struct_int64_wrappers_and_integer_map_keys_take_their_json_forms() -> None:
    order: Any = order_event()
    order.extra.update({"source": "app", "nested": {"n": 1.5, "flags": [True, None]}})
    order.big_wrapped.value = -(2**63)
    order.items_by_line[7].sku = "MUG"
    value = _schemaless().decode(order.SerializeToString())
    assert value["extra"] == {"source": "app", "nested": {"n": 1.5, "flags": [True, None]}}
    assert value["big_wrapped"] == -(2**63)  # an integer, not the mapping's string
    assert value["items_by_line"] == {"7": {"sku": "MUG", "quantity": 0, "unit_price_micros": 0}}
