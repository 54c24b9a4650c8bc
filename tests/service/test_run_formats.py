"""Every record of JSON, Avro and Confluent Avro topics becomes exactly the expected Vibes bodies.

The expected bodies are what the engine makes of the very records read back from
Kafka (with their real partitions and offsets); the simulator must have received
exactly those, each once.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bridge.codecs import load_avro_schema
from bridge.kafka.messages import to_source_record
from bridge.loading import load_bridge
from devtools.avro_encode import encode_avro
from tests.support.bridge_service import service_config, start_bridge
from tests.support.kafka import produce, read_all
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)
from tests.support.simulator import SimControl, start_sim
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
PER_TOPIC = 40

RULES = """\
rules:
  - name: order-confirmed
    topic: {orders}
    when: "status == 'CONFIRMED'"
    event_type: order_confirmed
    recipient:
      external_person_id: customer.id
      mdn: {{path: customer.phone, as: e164, region: US}}
    event_data:
      order_id: order_id
      item_count: {{path: "length(items)", default: 0}}
  - name: shipment-update
    topic: [{shipments}, {returns}]
    event_type: {{template: "shipment_{{status}}"}}
    event_id: {{template: "shp-{{shipment_id}}-{{status}}-{{_kafka.topic}}"}}
    recipient:
      external_person_id: customer.id
    event_data:
      carrier: carrier
      tracking_url: {{template: "https://track.example.com/{{tracking_number}}"}}
"""


@pytest.fixture
def registry() -> Iterator[TestSchemaRegistry]:
    with running_schema_registry() as running:
        yield running


def _orders() -> list[tuple[bytes, Any]]:
    example = json.loads((SCHEMAS / "examples" / "order_event.json").read_text())
    records = []
    for index in range(PER_TOPIC):
        value = copy.deepcopy(example)
        value["order_id"] = f"ORD-{index}"
        value["status"] = ("CONFIRMED", "PLACED")[index % 2]
        records.append((value["order_id"].encode(), value))
    return records


def _shipments() -> list[dict[str, Any]]:
    example = json.loads((SCHEMAS / "examples" / "shipment_event.json").read_text())
    values = []
    for index in range(PER_TOPIC):
        value = copy.deepcopy(example)
        value["shipment_id"] = f"SHP-{index}"
        value["status"] = ("SHIPPED", "DELIVERED")[index % 2]
        values.append(value)
    return values


def test_json_avro_and_confluent_avro_records_become_exactly_the_expected_bodies(
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    unique_group_id: str,
    registry: TestSchemaRegistry,
) -> None:
    orders, shipments, returns, dead_letters = (new_topic(2) for _ in range(4))
    schema_path = SCHEMAS / "shipment_event.avsc"
    schema = load_avro_schema(schema_path)
    schema_id = registry.register(f"{returns}-value", schema_path.read_text())
    produce(kafka_bootstrap, orders, _orders())
    produce(
        kafka_bootstrap,
        shipments,
        [(v["shipment_id"].encode(), encode_avro(schema, v)) for v in _shipments()],
    )
    produce(
        kafka_bootstrap,
        returns,
        [
            (v["shipment_id"].encode(), confluent_frame(schema_id, encode_avro(schema, v)))
            for v in _shipments()
        ],
    )
    config = service_config(
        tmp_path / "bridge.yaml",
        bootstrap=kafka_bootstrap,
        sim_url="http://127.0.0.1:1",  # replaced below, once the simulator runs
        group=unique_group_id,
        dead_letter_topic=dead_letters,
        sources=[],
        rules=RULES.format(orders=orders, shipments=shipments, returns=returns),
    )
    sources = (
        f"  - topic: {orders}\n    format: json\n"
        f"  - topic: {shipments}\n    format: avro\n    schema: {schema_path}\n"
        f"  - topic: {returns}\n    format: confluent-avro\n"
        f"    schema_registry: {registry.url}\n"
    )
    sim = start_sim((), tmp_path / "sim.log")
    control = SimControl(sim.url)
    text = config.read_text().replace("sources:\n", "sources:\n" + sources)
    config.write_text(text.replace("http://127.0.0.1:1", sim.url))
    expected = _expected_bodies(config, kafka_bootstrap, [orders, shipments, returns])
    assert len(expected) == PER_TOPIC // 2 + 2 * PER_TOPIC
    bridge = start_bridge(config, tmp_path / "bridge.log")
    try:
        wait_until(lambda: control.stats()["sent"] == len(expected), 60, "every event sent")
        received = Counter(
            orjson.dumps(event["body"], option=orjson.OPT_SORT_KEYS) for event in control.events()
        )
        assert received == expected
        assert control.stats()["duplicates"] == 0
        assert bridge.metric("vibes_bridge_dead_letters_total") == 0
        assert bridge.stop() == 0
    finally:
        if bridge.running:
            bridge.stop()
        control.close()
        sim.stop()


def _expected_bodies(config: Path, bootstrap: str, topics: list[str]) -> Counter[bytes]:
    """What the engine makes of the records as they are in Kafka (coordinates included)."""
    expected: Counter[bytes] = Counter()
    with load_bridge(config) as loaded:
        for topic in topics:
            for message in read_all(bootstrap, topic, PER_TOPIC):
                record = to_source_record(message)
                value = loaded.decoders[topic].decode(record.value)
                for event in loaded.engine.map(value, record).events:
                    body = orjson.loads(event.body)
                    expected[orjson.dumps(body, option=orjson.OPT_SORT_KEYS)] += 1
    return expected
