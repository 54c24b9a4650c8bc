"""The project's schemas: the Avro domain events, their examples, the Vibes entity."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from bridge.codecs import AvroSchema, make_decoder
from bridge.vibes.entity import entity_problems
from devtools.avro_encode import EncodeError, encode_avro
from tests.support.paths import SCHEMAS


def test_the_shipment_example_is_a_realistic_400_byte_record(
    shipment_schema: AvroSchema, shipment_example: dict[str, Any]
) -> None:
    data = encode_avro(shipment_schema, shipment_example)
    assert 380 <= len(data) <= 480
    assert len(shipment_example["items"]) == 6
    assert make_decoder("avro", schema=shipment_schema).decode(data) == shipment_example


def test_the_order_example_round_trips(
    order_schema: AvroSchema, order_example: dict[str, Any]
) -> None:
    data = encode_avro(order_schema, order_example)
    assert make_decoder("avro", schema=order_schema).decode(data) == order_example


def test_both_events_share_the_customer_and_line_item_records(
    shipment_schema: AvroSchema, order_schema: AvroSchema
) -> None:
    def field_type(schema: AvroSchema, name: str) -> Any:
        return next(f["type"] for f in schema["fields"] if f["name"] == name)

    assert field_type(shipment_schema, "customer") == field_type(order_schema, "customer")
    assert field_type(shipment_schema, "items") == field_type(order_schema, "items")


def test_the_encoder_refuses_what_does_not_fit(
    shipment_schema: AvroSchema, shipment_example: dict[str, Any]
) -> None:
    shipment_example["items"][0]["unit_price"] = "12.505"  # more digits than the scale
    with pytest.raises(EncodeError, match=r"items\[\]\.unit_price"):
        encode_avro(shipment_schema, shipment_example)


VIBES_SCHEMA = json.loads((SCHEMAS / "vibes_event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(VIBES_SCHEMA)

GOOD_BODIES: list[dict[str, Any]] = [
    {
        "event_id": "2d4a2",
        "event_type": "day_of_delivery",
        "event_data": {
            "first_name": "Bob",
            "external_person_id": "abcd12345",
            "delivery_time": "5:00 PM",
            "order_url": "https://example.com/orders/12345",
        },
        "debug_data": {"field": "CUST_SYSTEM"},
    },
    {"event_type": "Order-Shipped_2", "event_data": {"mdn": "+12995551234"}},
    {"event_type": "x", "event_data": {"vibes_device_id": "d"}, "event_id": "a" * 40},
]
BAD_BODIES: list[dict[str, Any]] = [
    {"event_data": {"mdn": "+12995551234"}},
    {"event_type": "order shipped", "event_data": {"mdn": "+1"}},
    {"event_type": "", "event_data": {"mdn": "+1"}},
    {"event_type": "t", "event_data": {"first_name": "Bob"}},
    {"event_type": "t", "event_data": {"mdn": 12995551234}},
    {"event_type": "t", "event_data": {"mdn": "+1"}, "event_id": "a" * 41},
    {"event_type": "t", "event_data": {"mdn": "+1"}, "event_id": ""},
    {"event_type": "t", "event_data": {"mdn": "+1"}, "debug_data": "text"},
    {"event_type": "t", "event_data": {"mdn": "+1"}, "extra": 1},
    {"event_type": "t", "event_data": []},
]


def test_the_vibes_event_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(VIBES_SCHEMA)
    assert VIBES_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("body", GOOD_BODIES)
def test_documented_bodies_are_valid(body: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(body)) == []
    assert entity_problems(body) == []  # the code's rules agree


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bodies_breaking_a_rule_are_invalid(body: dict[str, Any]) -> None:
    assert list(VALIDATOR.iter_errors(body)) != []
    assert entity_problems(body) != []  # the code's rules agree
