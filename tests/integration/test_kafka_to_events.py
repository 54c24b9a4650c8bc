"""Records produced to the real broker, read back, decoded and mapped with the example rules.

The Kafka path must give exactly what the dry run gives for the same values: the
codecs' output is the engine's input, whatever the wire format was.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from bridge.codecs import load_avro_schema
from bridge.errors import DecodeError
from bridge.kafka.messages import to_source_record
from bridge.loading import LoadedBridge, load_bridge
from bridge.mapping.engine import MappedEvent
from bridge.records import SourceRecord
from devtools.avro_encode import encode_avro
from tests.support.kafka import NewTopicFactory, read_all

REPO = Path(__file__).parents[2]
SCHEMA = REPO / "schemas" / "shipment_event.avsc"

pytestmark = pytest.mark.kafka


def _config(tmp_path: Path, orders: str, shipments: str) -> LoadedBridge:
    text = (REPO / "examples" / "bridge.yaml").read_text(encoding="utf-8")
    text = text.replace("shop.orders", orders).replace("shop.shipments", shipments)
    text = text.replace("../schemas/", f"{REPO / 'schemas'}/")
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return load_bridge(path, {})


def test_avro_and_json_records_map_as_in_the_dry_run(
    kafka_bootstrap: str, new_topic: NewTopicFactory, unique_group_id: str, tmp_path: Path
) -> None:
    orders, shipments = new_topic(), new_topic()
    loaded = _config(tmp_path, orders, shipments)
    shipment: dict[str, Any] = json.loads(
        (REPO / "schemas" / "examples" / "shipment_event.json").read_text(encoding="utf-8")
    )
    shipment["customer"]["push_device_id"] = "device-1"
    order: dict[str, Any] = json.loads(
        (REPO / "schemas" / "examples" / "order_event.json").read_text(encoding="utf-8")
    )
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(
        shipments,
        encode_avro(load_avro_schema(SCHEMA), shipment),
        key=b"s-1",
        headers=[("traceparent", b"00-trace")],
    )
    producer.produce(orders, orjson.dumps(order), key=b"o-1")
    producer.produce(shipments, b"\x02garbage")
    assert producer.flush(30) == 0

    decoders = loaded.decoders
    messages = read_all(kafka_bootstrap, [orders, shipments], 3, 60, group=unique_group_id)
    assert len(messages) == 3, f"read {len(messages)} of 3 records in time"
    records = [to_source_record(message) for message in messages]
    events: list[MappedEvent] = []
    decode_errors = []
    for record in records:
        try:
            value = decoders[record.topic].decode(record.value)
        except DecodeError as exc:
            decode_errors.append((record.topic, record.offset, exc.reason))
            continue
        result = loaded.engine.map(value, record)
        assert not result.failures
        events.extend(result.events)

    assert decode_errors == [(shipments, 1, "decode_error")]
    by_rule = {event.rule: orjson.loads(event.body) for event in events}
    assert sorted(by_rule) == ["order-confirmed", "order-shipped", "order-shipped-push"]
    shipped = by_rule["order-shipped"]
    assert shipped["event_id"] == f"shp-{shipment['shipment_id']}-SHIPPED"
    assert shipped["event_data"]["estimated_delivery"] == shipment["estimated_delivery"]
    assert shipped["event_data"]["mdn"] == "+14155550142"
    assert shipped["debug_data"] == {"source_system": "wms", "trace": "00-trace"}
    push = by_rule["order-shipped-push"]
    assert push["event_data"]["vibes_device_id"] == "device-1"

    # The same values through the dry-run path give the same bodies (the default
    # debug_data carries the record's timestamp, so the dry run is given Kafka's).
    (consumed_shipment,) = [r for r in records if r.topic == shipments and r.offset == 0]
    dry_shipment = loaded.engine.map(
        copy.deepcopy(shipment),
        SourceRecord(
            shipments,
            0,
            0,
            None,
            timestamp_ms=consumed_shipment.timestamp_ms,
            headers=(("traceparent", b"00-trace"),),
        ),
    )
    assert [orjson.loads(e.body) for e in dry_shipment.events] == [shipped, push]
    assert all(event.source.topic in (orders, shipments) for event in events)
