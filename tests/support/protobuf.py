"""The Protobuf test messages (tests/codecs/protobuf/order.proto) and confluent-kafka's
own serializers pointed at the test Schema Registry.

``order.desc`` is committed, made from the ``.proto`` files beside it with:

    python -m grpc_tools.protoc -I tests/codecs/protobuf --include_imports \\
        --descriptor_set_out=tests/codecs/protobuf/order.desc order.proto

(``grpcio-tools``, in the dev extra, ships protoc and the well-known types).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.message import Message

from tests.support.paths import ROOT

PROTOBUF_DIR = ROOT / "tests" / "codecs" / "protobuf"
ORDER_DESC = PROTOBUF_DIR / "order.desc"


@cache
def message_classes() -> dict[str, type[Message]]:
    """Every message of order.desc by full name, built in a pool of their own."""
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(ORDER_DESC.read_bytes())
    return message_factory.GetMessages(list(descriptor_set.file))


def order_event(**overrides: Any) -> Message:
    """A full shop.OrderEvent: every kind of field the codec maps is set."""
    order: Any = message_classes()["shop.OrderEvent"]()  # a class made at run time
    order.order_id = overrides.get("order_id", "ORD-1")
    order.status = overrides.get("status", 2)  # CONFIRMED
    order.customer.id = "CUST-7"
    order.customer.first_name = "Dana"
    order.customer.phone = "(415) 555-0142"
    order.customer.sms_opt_in = True
    order.customer.address.city = "Springfield"
    for sku, quantity in (("TSHIRT", 2), ("MUG", 1)):
        item = order.items.add()
        item.sku = sku
        item.quantity = quantity
        item.unit_price_micros = 12_500_000
    order.total_micros = 2**53 + 1  # beyond a double: must stay an exact integer
    order.sequence = 2**64 - 1
    order.placed_at.seconds = 1_795_000_000
    order.placed_at.nanos = 123_000_000
    order.fulfilment_sla.seconds = 90
    order.fulfilment_sla.nanos = 500_000_000
    order.coupon.value = "WELCOME10"
    order.attributes["channel"] = "web"
    order.pickup_store = "STORE-9"
    order.signature = b"\x00\xffsig"
    order.weight_kg = 1.25
    order.rating = 0.1
    order.tags.extend(["gift", "express"])
    built: Message = order
    return built


ORDER_DICT: dict[str, Any] = {
    "order_id": "ORD-1",
    "status": "CONFIRMED",
    "customer": {
        "id": "CUST-7",
        "first_name": "Dana",
        "phone": "(415) 555-0142",
        "sms_opt_in": True,
        "address": {"line1": "", "city": "Springfield", "postal_code": "", "country": ""},
    },
    "items": [
        {"sku": "TSHIRT", "quantity": 2, "unit_price_micros": 12_500_000},
        {"sku": "MUG", "quantity": 1, "unit_price_micros": 12_500_000},
    ],
    "total_micros": 2**53 + 1,
    "sequence": 2**64 - 1,
    "placed_at": "2026-11-18T11:06:40.123Z",
    "fulfilment_sla": "90.500s",
    "coupon": "WELCOME10",
    "attributes": {"channel": "web"},
    "pickup_store": "STORE-9",
    "signature": "AP9zaWc=",
    "weight_kg": 1.25,
    "rating": 0.1,
    "tags": ["gift", "express"],
    "items_by_line": {},
}
"""What the bridge decodes :func:`order_event` to (the mapping of docs/codecs.md)."""


def registry_client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url})


def protobuf_serialize(url: str, topic: str, message: Message) -> bytes:
    """``message`` as confluent-kafka's ProtobufSerializer frames it (registering the
    schema and its imports, as references, in the registry at ``url``)."""
    serializer = ProtobufSerializer(type(message), registry_client(url))
    data = serializer(message, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(data, bytes)
    return data


ADDRESS_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "postal_code": {"type": "string", "pattern": "^[0-9]{5}$"},
    },
    "required": ["city"],
}
CUSTOMER_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "status": {"enum": ["PLACED", "CONFIRMED"]},
        "customer": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "phone": {"type": "string"},
                "address": {"$ref": "address.json"},
            },
            "required": ["id"],
        },
        "items": {
            "type": "array",
            "items": {"$ref": "#/definitions/Item"},
        },
        "total": {"type": "number"},
    },
    "required": ["order_id", "customer"],
    "definitions": {
        "Item": {
            "type": "object",
            "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
        }
    },
}
"""A JSON Schema whose ``customer.address`` is another subject (``address.json``)."""


def json_serializer(url: str, address_subject: str, registry: Any) -> JSONSerializer:
    """confluent-kafka's JSONSerializer for CUSTOMER_SCHEMA, its reference registered
    first under ``address_subject`` (``registry`` is the test registry)."""
    version = 1
    registry.register(address_subject, json.dumps(ADDRESS_SCHEMA), schema_type="JSON")
    schema = Schema(
        json.dumps(CUSTOMER_SCHEMA),
        "JSON",
        [SchemaReference("address.json", address_subject, version)],
    )
    serializer: JSONSerializer = JSONSerializer(schema, registry_client(url))
    return serializer


def json_serialize(serializer: JSONSerializer, topic: str, value: dict[str, Any]) -> bytes:
    data = serializer(value, SerializationContext(topic, MessageField.VALUE))
    assert isinstance(data, bytes)
    return data
