"""Every record of every format's topics becomes exactly the expected Vibes bodies.

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
from bridge.errors import DecodeError
from bridge.kafka.messages import to_source_record
from bridge.loading import load_bridge
from devtools.avro_encode import encode_avro
from tests.support.bridge_service import run_replay, service_config, start_bridge
from tests.support.kafka import produce, read_all
from tests.support.protobuf import (
    ORDER_DESC,
    json_serialize,
    json_serializer,
    order_event,
    protobuf_serialize,
)
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)
from tests.support.simulator import SimControl, SimProcess, start_sim
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
    sources = (
        f"  - topic: {orders}\n    format: json\n"
        f"  - topic: {shipments}\n    format: avro\n    schema: {schema_path}\n"
        f"  - topic: {returns}\n    format: confluent-avro\n"
        f"    schema_registry: {registry.url}\n"
    )
    config, sim, control = _configure_with_simulator(
        tmp_path,
        kafka_bootstrap,
        unique_group_id,
        dead_letters,
        RULES.format(orders=orders, shipments=shipments, returns=returns),
        sources,
    )
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


def _expected_bodies(
    config: Path, bootstrap: str, topics: list[str], counts: dict[str, int] | None = None
) -> Counter[bytes]:
    """What the engine makes of the records as they are in Kafka (coordinates included);
    records that do not decode make none."""
    expected: Counter[bytes] = Counter()
    with load_bridge(config) as loaded:
        for topic in topics:
            for message in read_all(bootstrap, topic, (counts or {}).get(topic, PER_TOPIC)):
                record = to_source_record(message)
                try:
                    value = loaded.decoders[topic].decode(record.value)
                except DecodeError:
                    continue
                for event in loaded.engine.map(value, record).events:
                    body = orjson.loads(event.body)
                    expected[orjson.dumps(body, option=orjson.OPT_SORT_KEYS)] += 1
    return expected


PROTOBUF_RULES = """\
rules:
  - name: pb-order-confirmed
    topic: [{pb}, {cpb}]
    when: "status == 'CONFIRMED'"
    event_type: order_confirmed
    recipient:
      external_person_id: customer.id
      mdn: {{path: customer.phone, as: e164, region: US}}
    event_data:
      order_id: order_id
      total_micros: {{path: total_micros, as: integer}}
      placed_at: placed_at
      coupon: coupon
      item_count: {{path: "length(items)", default: 0}}
  - name: json-order
    topic: {cj}
    event_type: {{template: "order_{{status}}"}}
    recipient:
      external_person_id: customer.id
    event_data:
      order_id: order_id
      city: customer.address.city
"""


def _protobuf_orders() -> list[Any]:
    statuses = (2, 1)  # CONFIRMED, PLACED
    return [order_event(order_id=f"ORD-{n}", status=statuses[n % 2]) for n in range(PER_TOPIC)]


def _json_orders() -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"ORD-{n}",
            "status": ("PLACED", "CONFIRMED")[n % 2],
            "customer": {"id": f"C-{n}", "address": {"city": "Springfield"}},
        }
        for n in range(PER_TOPIC)
    ]


def test_protobuf_and_json_schema_records_become_exactly_the_expected_bodies(
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    unique_group_id: str,
    registry: TestSchemaRegistry,
) -> None:
    """Records made by confluent-kafka's own serializers (and the protobuf library,
    schemaless); two documents failing their JSON Schema are dead-lettered with their
    original bytes, and everything else flows."""
    pb, cpb, cj, dead_letters = (new_topic(2) for _ in range(4))
    produce(
        kafka_bootstrap,
        pb,
        [(m.order_id.encode(), m.SerializeToString()) for m in _protobuf_orders()],
    )
    produce(
        kafka_bootstrap,
        cpb,
        [
            (m.order_id.encode(), protobuf_serialize(registry.url, cpb, m))
            for m in _protobuf_orders()
        ],
    )
    serializer = json_serializer(registry.url, f"{cj}-address", registry)
    framed = [json_serialize(serializer, cj, value) for value in _json_orders()]
    # Two documents that fail their schema (the referenced subject's pattern; the enum)
    # but map well: dead-lettered while validating, delivered by a replay without it.
    address = {"city": "Springfield", "postal_code": "ABCDE"}
    invalid = [
        framed[0][:5]
        + orjson.dumps(
            {"order_id": "BAD-1", "status": "PLACED", "customer": {"id": "C", "address": address}}
        ),
        framed[0][:5]
        + orjson.dumps({"order_id": "BAD-2", "status": "LOST", "customer": {"id": "C"}}),
    ]
    produce(
        kafka_bootstrap,
        cj,
        [(b"bad", value) for value in invalid] + [(b"good", value) for value in framed],
        partition=0,
    )
    sources = (
        f"  - topic: {pb}\n    format: protobuf\n"
        f"    schema: {ORDER_DESC}\n    message: shop.OrderEvent\n"
        f"  - topic: {cpb}\n    format: confluent-protobuf\n"
        f"    schema_registry: {registry.url}\n"
        f"  - topic: {cj}\n    format: confluent-json\n"
        f"    schema_registry: {registry.url}\n    validate: true\n"
    )
    config, sim, control = _configure_with_simulator(
        tmp_path,
        kafka_bootstrap,
        unique_group_id,
        dead_letters,
        PROTOBUF_RULES.format(pb=pb, cpb=cpb, cj=cj),
        sources,
    )
    expected = _expected_bodies(
        config, kafka_bootstrap, [pb, cpb, cj], counts={cj: PER_TOPIC + len(invalid)}
    )
    assert len(expected) == PER_TOPIC // 2 * 2 + PER_TOPIC
    bridge = start_bridge(config, tmp_path / "bridge.log")
    try:
        wait_until(lambda: control.stats()["sent"] == len(expected), 60, "every event sent")
        received = Counter(
            orjson.dumps(event["body"], option=orjson.OPT_SORT_KEYS) for event in control.events()
        )
        assert received == expected
        assert control.stats()["duplicates"] == 0
        letters = read_all(kafka_bootstrap, dead_letters, len(invalid))
        assert sorted(letter.value() for letter in letters) == sorted(invalid)
        for letter in letters:
            headers = dict(letter.headers())
            assert headers["bridge.error.reason"] == b"decode_error"
            assert headers["bridge.error.code"] == b"schema_violation"
        assert bridge.metric("vibes_bridge_dead_letters_total") == len(invalid)
        assert bridge.stop() == 0
        # The letters hold the original bytes, so a replay with validation off sends them.
        fixed = tmp_path / "fixed.yaml"
        fixed.write_text(config.read_text().replace("validate: true", "validate: false"))
        replayed = run_replay(fixed)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        wait_until(
            lambda: control.stats()["sent"] == len(expected) + len(invalid), 60, "letters sent"
        )
        order_ids = {event["body"]["event_data"]["order_id"] for event in control.events()}
        assert {"BAD-1", "BAD-2"} <= order_ids
    finally:
        if bridge.running:
            bridge.stop()
        control.close()
        sim.stop()


def _configure_with_simulator(
    tmp_path: Path,
    bootstrap: str,
    group: str,
    dead_letters: str,
    rules: str,
    sources: str,
) -> tuple[Path, SimProcess, SimControl]:
    """The configuration file with ``sources`` (YAML list items) and a simulator it points at."""
    config = service_config(
        tmp_path / "bridge.yaml",
        bootstrap=bootstrap,
        sim_url="http://127.0.0.1:1",  # replaced below, once the simulator runs
        group=group,
        dead_letter_topic=dead_letters,
        sources=[],
        rules=rules,
    )
    sim = start_sim((), tmp_path / "sim.log")
    text = config.read_text().replace("sources:\n", "sources:\n" + sources)
    config.write_text(text.replace("http://127.0.0.1:1", sim.url))
    return config, sim, SimControl(sim.url)
