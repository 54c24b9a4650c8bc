"""The real broker behind the `kafka` fixtures: produce, consume, commit; the CLI."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from devtools.kafka_broker import ENV_BOOTSTRAP, ENV_STATE_FILE, REPO_ROOT
from tests.support.kafka import NewTopicFactory, poll_records

POLL_TIMEOUT = 60.0

Headers = list[tuple[str, str | bytes | None]]


def _producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
        }
    )


def _consumer(bootstrap: str, group_id: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def _produce(producer: Producer, topic: str, records: list[tuple[bytes, bytes, Headers]]) -> None:
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    for key, value, headers in records:
        producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "records still undelivered after 30 s"
    assert errors == []


def _consume(consumer: Consumer, count: int) -> list[Message]:
    """Exactly ``count`` records within POLL_TIMEOUT; an error event fails the test."""
    received = poll_records(consumer, count, POLL_TIMEOUT, raise_errors=True)
    assert len(received) == count, (
        f"got {len(received)}/{count} records within {POLL_TIMEOUT:.0f} s"
    )
    return received


@pytest.mark.kafka
def test_produce_and_consume_with_manual_commit(
    kafka_bootstrap: str, new_topic: NewTopicFactory, unique_group_id: str
) -> None:
    topic = new_topic()
    records: list[tuple[bytes, bytes, Headers]] = [
        (
            f"order-{i}".encode(),
            f'{{"order_id": "o-{i}", "seq": {i}}}'.encode(),
            [("event-type", b"order.created"), ("seq", str(i).encode())],
        )
        for i in range(5)
    ]
    producer = _producer(kafka_bootstrap)
    _produce(producer, topic, records)

    consumer = _consumer(kafka_bootstrap, unique_group_id)
    try:
        consumer.subscribe([topic])
        received = _consume(consumer, len(records))

        assert [(m.key(), m.value(), m.headers()) for m in received] == records
        assert [(m.topic(), m.partition(), m.offset()) for m in received] == [
            (topic, 0, offset) for offset in range(len(records))
        ]

        result = consumer.commit(message=received[-1], asynchronous=False)
        assert [(tp.topic, tp.partition, tp.offset, tp.error) for tp in result] == [
            (topic, 0, len(records), None)
        ]
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert [(tp.partition, tp.offset) for tp in committed] == [(0, len(records))]
    finally:
        consumer.close()

    # A new member of the same group resumes after the committed offset.
    _produce(producer, topic, [(b"order-5", b'{"order_id": "o-5", "seq": 5}', [])])
    resumed = _consumer(kafka_bootstrap, unique_group_id)
    try:
        committed = resumed.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed[0].offset == len(records)
        resumed.subscribe([topic])
        [msg] = _consume(resumed, 1)
        assert (msg.offset(), msg.key()) == (len(records), b"order-5")
    finally:
        resumed.close()


@pytest.mark.kafka
def test_new_topic_partitions_and_key_routing(
    kafka_bootstrap: str, kafka_admin: AdminClient, new_topic: NewTopicFactory, unique_group_id: str
) -> None:
    topic = new_topic(partitions=3)
    assert sorted(kafka_admin.list_topics(topic=topic, timeout=10).topics[topic].partitions) == [
        0,
        1,
        2,
    ]
    keys = [f"shipment-{i % 4}".encode() for i in range(12)]
    _produce(
        _producer(kafka_bootstrap),
        topic,
        [(key, str(seq).encode(), [("seq", str(seq).encode())]) for seq, key in enumerate(keys)],
    )

    consumer = _consumer(kafka_bootstrap, unique_group_id)
    try:
        consumer.subscribe([topic])
        received = _consume(consumer, len(keys))
    finally:
        consumer.close()
    partitions_by_key: dict[bytes | None, set[int]] = {}
    seqs_by_key: dict[bytes | None, list[int]] = {}
    for msg in received:
        partition = msg.partition()
        assert partition is not None
        partitions_by_key.setdefault(msg.key(), set()).add(partition)
        seqs_by_key.setdefault(msg.key(), []).append(int(msg.value() or b"-1"))
    assert all(len(parts) == 1 for parts in partitions_by_key.values())  # a key sticks
    assert all(seqs == sorted(seqs) for seqs in seqs_by_key.values())  # per-key order kept


def _kafka_local(
    command: str, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "kafka-local"), command],
        cwd="/",  # the wrapper must work from any directory
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.kafka
@pytest.mark.slow
def test_cli_start_reuses_running_broker(tmp_path: Path) -> None:
    """`start` twice gives one broker; `status` sees it; `stop` ends it.

    Uses its own state file so that a developer's `scripts/kafka-local` broker is
    neither reused nor stopped; it starts a separate broker (~10-20 s).
    """
    env = {k: v for k, v in os.environ.items() if k != ENV_BOOTSTRAP}
    env[ENV_STATE_FILE] = str(tmp_path / "local.json")
    try:
        first = _kafka_local("start", env, timeout=600)
        assert first.returncode == 0, first.stderr
        line = first.stdout.strip().splitlines()[-1]
        assert line.startswith(f"{ENV_BOOTSTRAP}=")

        started = time.monotonic()
        second = _kafka_local("start", env, timeout=120)
        reuse_seconds = time.monotonic() - started
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip().splitlines()[-1] == line
        assert "reusing" in second.stderr
        assert reuse_seconds < 30

        status = _kafka_local("status", env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.strip().splitlines()[-1] == line
    finally:
        stop = _kafka_local("stop", env, timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not (tmp_path / "local.json").exists()
    after = _kafka_local("status", env, timeout=60)
    assert after.returncode == 1, after.stdout
