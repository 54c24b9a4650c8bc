"""The CPU one delivery receipt costs the bridge process, on the path ``run`` uses.

``--receipts`` receipts go through the real path after Vibes accepted an event:
``dispatch.receipt_of``, the outbox's ``write_receipt`` (encode, size check) and the
shared idempotent ``acks=all`` producer (``linger.ms`` as with receipts on) to a fresh
topic on $KAFKA_BOOTSTRAP_SERVERS, then the consumer thread's ``serve`` until every
receipt is acknowledged and its ticket finished. The figure is the process's CPU time
(every thread: Python and librdkafka's) per receipt, so it holds on a busy machine
where end-to-end rates do not. Medians of ``--rounds``.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:40031 .venv/bin/python -m bench.receipt_path --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Sequence

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bridge.config.model import KafkaSettings
from bridge.delivery.outcomes import Delivered
from bridge.kafka.config import producer_config
from bridge.kafka.producer import DeadLetterProducer
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.records import SourceRecord
from bridge.service.dispatch import receipt_of
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker
from bridge.service.outbox import DeadLetterOutbox

SOURCE = "bench.orders"


def one_round(bootstrap: str, topic: str, count: int) -> float:
    """CPU microseconds per receipt for ``count`` receipts."""
    settings = producer_config(KafkaSettings(bootstrap_servers=bootstrap), receipts=True)
    producer = DeadLetterProducer(settings.settings, "bench.unused-dlq")
    tracker = OffsetTracker()
    tracker.assign(SOURCE, 0)
    outbox = DeadLetterOutbox(producer, tracker, BridgeMetrics(), Health(), receipts_topic=topic)
    events = [
        MappedEvent(
            "order-update",
            "order_update",
            uuid.uuid4().hex,
            "demo",
            b"{}",
            SourceRecord(SOURCE, 0, offset, None, timestamp_ms=1_764_000_000_000 + offset),
        )
        for offset in range(count)
    ]
    tickets = [tracker.add(SOURCE, 0, offset, units=1, size=1) for offset in range(count)]
    started = time.process_time()
    for event, ticket in zip(events, tickets, strict=True):
        delivered = Delivered(200, 1, 1_764_000_000_100, 1_764_000_000_200)
        outbox.write_receipt(receipt_of(event, delivered), ticket)
        outbox.serve()  # the consumer thread serves the producer every turn
    while tracker.records_in_flight:
        outbox.serve(0.05)
    used = time.process_time() - started
    outbox.flush(5)
    return used / count * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receipts", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"bench.receipts.{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(topic, num_partitions=6)])[topic].result(timeout=30)
    try:
        figures = [one_round(bootstrap, topic, args.receipts) for _ in range(args.rounds)]
    finally:
        admin.delete_topics([topic])[topic].result(timeout=30)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"{args.receipts} receipts x {args.rounds} rounds (load average {load}): "
        f"{statistics.median(figures):.1f} CPU-µs per receipt "
        f"(min {min(figures):.1f}, max {max(figures):.1f})"
    )


if __name__ == "__main__":
    main()
