"""`make demo`: the whole path on this machine, from a bare checkout to messages "sent".

1. a real Kafka broker (KAFKA_BOOTSTRAP_SERVERS if set, else the project's own
   Apache Kafka from Maven Central: see devtools/kafka_broker/);
2. the Vibes API simulator (`vibes-bridge sim`) on a free loopback port;
3. a handful of sample order (JSON) and shipment (Avro) events produced to Kafka,
   plus one undecodable record;
4. `vibes-bridge run -c examples/bridge.yaml` as a subprocess, delivering to the
   simulator, until every expected event was sent and the undecodable record is on
   the dead-letter topic;
5. a summary: what the simulated Vibes received, what was dead-lettered and why,
   the key metrics from the bridge's /metrics; then SIGTERM, and the bridge's exit
   status (0 after a graceful stop);
6. everything is stopped.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
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
from devtools.avro_encode import encode_avro  # noqa: E402
from devtools.kafka_broker import kafka_broker  # noqa: E402

CONFIG = REPO / "examples" / "bridge.yaml"
SCHEMAS = REPO / "schemas"
CREDENTIALS = ("demo", "demo")
DEADLINE_SECONDS = 60.0
# Confirmed, cancelled, shipped (text and push), out for delivery, delivered.
EXPECTED_SENT = 6
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


def start_from(bootstrap: str, group: str, start: dict[str, int]) -> None:
    """Commit the demo group's positions at this run's first sample, so a broker reused
    from an earlier demo does not feed the bridge that demo's records again."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = [TopicPartition(topic, 0, offset) for topic, offset in start.items()]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@contextmanager
def bridge(
    environ: dict[str, str], log_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`vibes-bridge run` as a subprocess; yields it and its management URL."""
    command = [sys.executable, "-m", "bridge", "run", "-c", str(CONFIG)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=environ
        )
    try:
        yield process, wait_for_management(process, log_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=20)


def wait_for_management(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the bridge exited early:\n{log_path.read_text()}")
        for line in log_path.read_text(errors="replace").splitlines():
            if "vibes-bridge running" in line:
                return str(json.loads(line)["management"])
        time.sleep(0.1)
    raise SystemExit("the bridge's management port did not open in time")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def dead_letters(bootstrap: str, topic: str, start: int) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-dlq-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(topic, 0, start)])
    letters = []
    try:
        while (message := consumer.poll(1.0)) is not None:
            if message.error() is None:
                letters.append(message)
    finally:
        consumer.close()
    return letters


def sim_sent(base_url: str) -> int:
    return int(httpx.get(f"{base_url}/_sim/stats", timeout=10).json()["sent"])


def metric_lines(management: str) -> list[str]:
    wanted = (
        "vibes_bridge_records_consumed_total",
        "vibes_bridge_records_unmatched_total",
        "vibes_bridge_events_delivered_total",
        "vibes_bridge_dead_letters_total",
        "vibes_bridge_ready ",
    )
    text = httpx.get(f"{management}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(wanted)]


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
    dlq = "shop.vibes-bridge.dlq"
    group = "vibes-bridge-demo"
    with kafka_broker() as bootstrap, simulator() as base_url:
        say(f"Kafka at {bootstrap}; Vibes simulator at {base_url}")
        start = produce(bootstrap, [*topics, dlq])
        start_from(bootstrap, group, {t: start[t] for t in topics})
        environ = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "VIBES_BASE_URL": base_url,
            "BRIDGE_GROUP_ID": group,
            "BRIDGE_MANAGEMENT_PORT": "0",
        }
        log_path = REPO / ".cache" / "demo-bridge.log"
        log_path.parent.mkdir(exist_ok=True)
        say(f"starting vibes-bridge run -c {CONFIG.relative_to(REPO)} (JSON logs: {log_path})")
        with bridge(environ, log_path) as (process, management):
            wait_for(lambda: sim_sent(base_url) >= EXPECTED_SENT, "the events to be sent")
            wait_for(lambda: len(dead_letters(bootstrap, dlq, start[dlq])) >= 1, "the dead letter")
            stats = report(base_url)
            letters = dead_letters(bootstrap, dlq, start[dlq])
            say("\ndead-lettered:")
            for letter in letters:
                headers = {name: (value or b"").decode() for name, value in letter.headers()}
                say(
                    f"  {headers['bridge.error.reason']} ({headers['bridge.error.code']}) from "
                    f"{headers['bridge.source.topic']}[{headers['bridge.source.partition']}]"
                    f"@{headers['bridge.source.offset']}: {headers['bridge.error.message']}"
                )
            say("\nmetrics:")
            for line in metric_lines(management):
                say(f"  {line}")
            process.send_signal(signal.SIGTERM)
            status = process.wait(timeout=60)
            say(f"\nSIGTERM: the bridge stopped with exit status {status}")
    ok = stats["sent"] == EXPECTED_SENT and stats["rejected"] == 0 and len(letters) == 1
    ok = ok and status == 0
    say("demo finished: " + ("OK" if ok else "UNEXPECTED RESULT"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
