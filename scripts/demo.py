"""`make demo`: the whole path on this machine, from a bare checkout to messages "sent".

1. a real Kafka broker (KAFKA_BOOTSTRAP_SERVERS if set, else the project's own
   Apache Kafka from Maven Central: see devtools/kafka_broker.py);
2. the Vibes API simulator (`vibes-bridge sim`) on a free loopback port;
3. a handful of sample order (JSON) and shipment (Avro) events produced to Kafka,
   plus one undecodable record;
4. the bridge's stages on each record read back from Kafka: decode, match and map
   with examples/bridge.yaml, POST to the simulator, then commit;
5. one record delivered a second time, to show that its deterministic event_id
   makes Vibes ignore the repeat;
6. what the simulator received, then everything is stopped.

Until the `vibes-bridge run` service lands (delivery issue), step 4 is driven from
here with the same modules the service uses; this script will then start `run`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bridge.codecs import load_avro_schema  # noqa: E402
from bridge.errors import DecodeError  # noqa: E402
from bridge.kafka.messages import to_source_record  # noqa: E402
from bridge.loading import LoadedBridge, load_bridge  # noqa: E402
from bridge.mapping.engine import MappedEvent  # noqa: E402
from bridge.records import SourceRecord  # noqa: E402
from devtools.avro_encode import encode_avro  # noqa: E402
from devtools.kafka_broker import kafka_broker  # noqa: E402

CONFIG = REPO / "examples" / "bridge.yaml"
SCHEMAS = REPO / "schemas"
CREDENTIALS = ("demo", "demo")
DEADLINE_SECONDS = 60.0
NOT_READY = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def simulator() -> Iterator[str]:
    """`vibes-bridge sim` as a subprocess; yields its base URL."""
    command = [sys.executable, "-m", "bridge", "sim", "--port", "0", "--company-key", "demo"]
    command += ["--username", CREDENTIALS[0], "--password", CREDENTIALS[1]]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("listening on "):
                yield line.removeprefix("listening on ").strip()
                break
        else:
            raise SystemExit("the simulator exited before listening")
    finally:
        process.terminate()
        process.wait(timeout=20)


def sample_events() -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, key, decoded value) for a small, varied day of a shop."""
    order = json.loads((SCHEMAS / "examples" / "order_event.json").read_text(encoding="utf-8"))
    shipment = json.loads(
        (SCHEMAS / "examples" / "shipment_event.json").read_text(encoding="utf-8")
    )
    events = []
    for status, changes in [
        ("CONFIRMED", {}),
        ("CANCELLED", {"cancel_reason": "OUT_OF_STOCK", "order_id": "ORD-1000043"}),
        ("PLACED", {}),  # no rule: skipped and counted, not an error
    ]:
        value = {**copy.deepcopy(order), **changes, "status": status}
        events.append(("shop.orders", value["order_id"], value))
    for status, push in [
        ("SHIPPED", "device-4711"),  # fan-out: a text and a push
        ("OUT_FOR_DELIVERY", None),
        ("DELIVERED", None),
    ]:
        value = copy.deepcopy(shipment)
        value["status"] = status
        value["customer"]["push_device_id"] = push
        events.append(("shop.shipments", value["shipment_id"], value))
    return events


def encode(topic: str, value: dict[str, Any]) -> bytes:
    if topic == "shop.shipments":
        return encode_avro(load_avro_schema(SCHEMAS / "shipment_event.avsc"), value)
    return json.dumps(value).encode()


def produce(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Produce the samples; return each topic's offset before them (where reading starts)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    wait_for_leaders(admin, topics)
    start = watermarks(bootstrap, topics)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    count = 0
    for topic, key, value in sample_events():
        trace = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"
        headers: list[tuple[str, str | bytes | None]] = [("traceparent", trace)]
        producer.produce(topic, encode(topic, value), key=key, headers=headers)
        count += 1
    producer.produce("shop.shipments", b"\x00\xffnot avro", key="garbage")
    producer.flush(30)
    say(f"produced {count} events and 1 undecodable record to {', '.join(topics)}")
    return start


def wait_for_leaders(admin: AdminClient, topics: list[str]) -> None:
    """A new topic answers "not leader" until its partition has one: wait, with a bound."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=10).topics
        if all(
            t in metadata and metadata[t].partitions and metadata[t].partitions[0].leader >= 0
            for t in topics
        ):
            return
        time.sleep(0.2)
    raise SystemExit(f"topics {topics} got no leader within {DEADLINE_SECONDS:.0f} s")


def watermarks(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Each topic's end offset. Right after creation the broker may still answer "not
    leader" although the metadata names one, so retriable errors are retried, bounded."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4()}"})
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        ends = {}
        for topic in topics:
            while topic not in ends:
                try:
                    ends[topic] = consumer.get_watermark_offsets(
                        TopicPartition(topic, 0), timeout=10
                    )[1]
                except KafkaException as exc:
                    if exc.args[0].code() not in NOT_READY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        return ends
    finally:
        consumer.close()


def consume(bootstrap: str, start: dict[str, int], expected: int) -> list[SourceRecord]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "vibes-bridge-demo",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, offset) for topic, offset in start.items()])
    records: list[SourceRecord] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    try:
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            records.append(to_source_record(message))
        if records:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    if len(records) < expected:
        raise SystemExit(f"read {len(records)} of {expected} records back from Kafka in time")
    return records


def post(client: httpx.Client, event: MappedEvent) -> int:
    response = client.post(
        f"/companies/{event.company_key}/events",
        content=event.body,
        headers={"Content-Type": "application/json", "X-API-Version": "2"},
    )
    return response.status_code


def deliver(loaded: LoadedBridge, records: list[SourceRecord], base_url: str) -> None:
    """Decode, map and POST each record, then one event a second time."""
    by_topic = loaded.decoders
    delivered: list[MappedEvent] = []
    with httpx.Client(base_url=base_url, auth=CREDENTIALS, timeout=10) as client:
        for record in records:
            where = f"{record.topic}@{record.offset}"
            try:
                value = by_topic[record.topic].decode(record.value)
            except DecodeError as exc:
                say(f"  {where}: decode_error ({exc.code}) -> would be dead-lettered")
                continue
            result = loaded.engine.map(value, record)
            if not result.matched:
                say(f"  {where}: no rule matches -> skipped")
            for failure in result.failures:
                say(f"  {where}: mapping_error ({failure.error.code}) in rule {failure.rule}")
            for event in result.events:
                status = post(client, event)
                delivered.append(event)
                say(f"  {where}: {event.rule} -> {event.event_type} HTTP {status}")
        if delivered:
            again = delivered[0]
            status = post(client, again)
            say(f"  redelivered {again.event_id}: HTTP {status} (a repeated event_id is ignored)")


def report(base_url: str) -> dict[str, Any]:
    events = httpx.get(f"{base_url}/_sim/events", timeout=10).json()
    stats: dict[str, Any] = httpx.get(f"{base_url}/_sim/stats", timeout=10).json()
    say("\nwhat the simulated Vibes received:")
    for item in events:
        body = item["body"]
        recipients = sorted(
            k for k in body["event_data"] if k in ("external_person_id", "mdn", "vibes_device_id")
        )
        line = f"{item['outcome']:9} {body['event_type']:20} {body['event_id']:40}"
        say(f"  {line} to {', '.join(recipients)}")
    say(
        "stats: "
        + json.dumps({k: stats[k] for k in ("received", "sent", "duplicates", "rejected")})
    )
    return stats


def main() -> int:
    topics = ["shop.orders", "shop.shipments"]
    with kafka_broker() as bootstrap, simulator() as base_url:
        say(f"Kafka at {bootstrap}; Vibes simulator at {base_url}")
        environ = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "VIBES_BASE_URL": base_url}
        loaded = load_bridge(CONFIG, environ)
        start = produce(bootstrap, topics)
        records = consume(bootstrap, start, expected=len(sample_events()) + 1)
        say(f"read {len(records)} records back; mapping with {CONFIG.relative_to(REPO)}:")
        deliver(loaded, records, base_url)
        stats = report(base_url)
    ok = stats["sent"] == 6 and stats["duplicates"] == 1 and stats["rejected"] == 0
    say("demo finished: " + ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
