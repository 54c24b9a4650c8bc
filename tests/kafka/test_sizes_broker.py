"""Against the real broker: topic limits are learned, cut letters are accepted at every
limit, and the dead-letter producer neither raises nor blocks."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from bridge.kafka.config import KafkaClientConfig
from bridge.kafka.producer import DeadLetterProducer
from bridge.kafka.sizes import record_budget, record_size, sized_producer_config
from bridge.kafka.topic_limits import read_topic_limits
from tests.support.kafka import read_all
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka

BROKER_DEFAULT = 1_048_588  # the test broker's message.max.bytes (Kafka's default)


def base(bootstrap: str) -> KafkaClientConfig:
    return KafkaClientConfig(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
    )


def test_limits_are_read_for_set_default_and_missing_topics(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    small = new_topic(1, {"max.message.bytes": "10000"})
    plain = new_topic(1)
    missing = f"not-created-{time.monotonic_ns()}"
    limits = read_topic_limits({"bootstrap.servers": kafka_bootstrap}, [small, plain, missing])
    assert limits == {small: 10_000, plain: BROKER_DEFAULT, missing: BROKER_DEFAULT}


def test_unreachable_broker_leaves_the_limits_unknown() -> None:
    limits = read_topic_limits({"bootstrap.servers": "127.0.0.1:1"}, ["t"], timeout=1.0)
    assert limits == {}


@pytest.mark.parametrize("limit", [10_000, 100_000, BROKER_DEFAULT])
def test_letters_cut_to_the_budget_are_accepted_with_incompressible_values(
    kafka_bootstrap: str, new_topic: Callable[..., str], limit: int
) -> None:
    topic = new_topic(1, {"max.message.bytes": str(limit)})
    config, effective = sized_producer_config(base(kafka_bootstrap), [limit])
    producer = DeadLetterProducer(config.settings, topic)
    budget = record_budget(effective)
    headers: list[tuple[str, bytes | None]] = [("bridge.error.reason", b"decode_error")] * 5
    outcomes: list[str | None] = []
    for key_size in (0, 40):
        key = os.urandom(key_size) or None
        value_size = budget - record_size(key, None, headers)
        # random bytes: lz4 cannot shrink them, the worst case for the margin
        producer.send(key, os.urandom(value_size), headers, outcomes.append)
    assert producer.flush(30) == 0
    assert outcomes == [None, None]
    assert len(read_all(kafka_bootstrap, topic, 2)) == 2


@pytest.mark.parametrize("excess", [1, 100_000, 2_000_000])
def test_a_letter_too_large_for_the_producer_is_reported_not_raised(
    kafka_bootstrap: str, new_topic: Callable[..., str], excess: int
) -> None:
    topic = new_topic(1)
    producer = DeadLetterProducer(
        {**base(kafka_bootstrap).settings, "message.max.bytes": 10_000}, topic
    )
    outcomes: list[str | None] = []
    producer.send(None, b"x" * (10_000 + excess), [], outcomes.append)  # must not raise
    producer.send(None, b"small", [], outcomes.append)
    assert producer.flush(30) == 0
    assert sorted(map(str, outcomes)) == ["MSG_SIZE_TOO_LARGE", "None"]


def test_a_full_local_queue_neither_blocks_nor_loses_a_letter(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(1)
    settings = {**base(kafka_bootstrap).settings, "queue.buffering.max.messages": 2}
    producer = DeadLetterProducer(settings, topic)
    outcomes: list[str | None] = []
    served_on: set[str] = set()
    sent = threading.Event()

    def acknowledged(error: str | None) -> None:
        served_on.add(threading.current_thread().name)
        outcomes.append(error)

    def send_all() -> None:  # as the asyncio loop would: nobody polls meanwhile
        for number in range(50):
            producer.send(None, str(number).encode(), [], acknowledged)
        sent.set()

    sender = threading.Thread(target=send_all)
    sender.start()
    # Returns although the queue holds 2 and no one serves acknowledgements.
    wait_until(sent.is_set, 10, "every send to return without polling")
    sender.join()
    assert outcomes == []  # send served nothing itself: it never polled on the caller's thread

    def all_acknowledged() -> bool:
        producer.poll(0.05)  # the consumer thread's serve() drains the backlog
        return len(outcomes) == 50

    wait_until(all_acknowledged, 60, "every letter acknowledged")
    assert outcomes == [None] * 50
    assert served_on == {threading.current_thread().name}  # only the polling thread served
    values = sorted(int(message.value()) for message in read_all(kafka_bootstrap, topic, 50))
    assert values == list(range(50))
    assert producer.flush(10) == 0
