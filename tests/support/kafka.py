"""The real broker from a test's side: create topics, produce, read N records, offsets.

Every wait here is ``tests.support.waiting``'s bounded poll. ``read_all`` is the one
way tests and benchmarks read records back; ``poll_records`` is its core for a test
that owns its consumer (a group it commits with, or resumes).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tests.support.waiting import poll_until

TOPIC_READY_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 30.0
# One blocking consume per poll: short enough that the deadline is kept to within it.
_CONSUME_WAIT_S = 0.5
_TOPIC_POLL_S = 0.1

NewTopicFactory = Callable[..., str]
"""The ``new_topic`` fixture: ``new_topic(partitions=1, config=None) -> name``."""


class TopicMaker:
    """Creates uniquely named, ready topics on one broker; ``delete_all`` removes them.

    The ``new_topic`` fixture is one on the shared broker; a test with a broker of
    its own (``own_broker``) makes one for that broker.
    """

    def __init__(self, bootstrap: str, prefix: str = "test") -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.created: list[str] = []
        self._admin = AdminClient({"bootstrap.servers": bootstrap})

    def __call__(self, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"{self.prefix}-{uuid.uuid4().hex[:12]}"
        create_topic(self._admin, name, partitions, config)
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        """Best effort: the broker is disposable, so a failure is only printed."""
        if not self.created:
            return
        try:
            for future in self._admin.delete_topics(self.created, operation_timeout=10).values():
                future.result(timeout=15)
        except Exception as exc:  # cleanup only
            print(f"warning: could not delete test topics {self.created}: {exc}")
        self.created = []


def create_topic(
    admin: AdminClient, name: str, partitions: int = 1, config: dict[str, str] | None = None
) -> str:
    """Create ``name`` and wait until every partition has a leader; the name."""
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=TOPIC_READY_TIMEOUT_S,
        request_timeout=TOPIC_READY_TIMEOUT_S,
    )
    futures[name].result(timeout=TOPIC_READY_TIMEOUT_S)
    wait_for_topic(admin, name, partitions)
    return name


def wait_for_topic(
    admin: AdminClient, name: str, partitions: int, timeout: float = TOPIC_READY_TIMEOUT_S
) -> None:
    """Wait until metadata shows every partition of ``name`` with a leader.

    A created topic is not usable at once: producing before its leaders are
    elected fails, so every creator waits here. TimeoutError says what was seen.
    """
    state = ["no metadata yet"]

    def ready() -> bool:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if topic is not None and topic.error is None:
            leaders = [p.leader for p in topic.partitions.values() if p.error is None]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return True
            state[0] = f"{len(leaders)}/{partitions} partitions with leaders {leaders}"
        elif topic is not None:
            state[0] = f"error {topic.error}"
        return False

    if not poll_until(ready, timeout, _TOPIC_POLL_S):
        raise TimeoutError(f"topic {name} not ready within {timeout:.0f} s ({state[0]})")


def produce(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes | None, Any]],
    partition: int | None = None,
) -> int:
    """Produce ``(key, value)`` pairs (values JSON-encoded unless bytes); the count."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    count = 0
    for key, value in records:
        payload = value if isinstance(value, bytes) else orjson.dumps(value)
        if partition is None:
            producer.produce(topic, value=payload, key=key)
        else:
            producer.produce(topic, value=payload, key=key, partition=partition)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return count


def poll_records(
    consumer: Consumer,
    count: int,
    timeout: float = READ_TIMEOUT_S,
    *,
    raise_errors: bool = False,
) -> list[Any]:
    """Up to ``count`` records from a subscribed ``consumer`` within ``timeout`` seconds.

    Fewer when the time ran out: the caller asserts the count, so its message can
    say what it expected. Error events are skipped (a topic's metadata still
    settling), or raised with ``raise_errors``.
    """
    received: list[Any] = []  # confluent-kafka Messages; Any keeps callers' reads simple

    def enough() -> bool:
        if len(received) >= count:
            return True
        for message in consumer.consume(count - len(received), _CONSUME_WAIT_S):
            error = message.error()
            if error is None:
                received.append(message)
            elif raise_errors:
                raise KafkaException(error)
        return len(received) >= count

    poll_until(enough, timeout, interval=0)  # the consume call itself waits
    return received


def read_all(
    bootstrap: str,
    topics: str | Sequence[str],
    expected: int,
    timeout: float = READ_TIMEOUT_S,
    *,
    group: str | None = None,
) -> list[Any]:
    """Read ``expected`` records of ``topics`` from the start (fewer if ``timeout`` passed).

    A fresh group unless ``group`` is given; nothing is committed.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics] if isinstance(topics, str) else list(topics))
    try:
        return poll_records(consumer, expected, timeout)
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed positions of ``topic`` (-1001 where none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed(
            [TopicPartition(topic, number) for number in range(partitions)], timeout=10
        )
    finally:
        consumer.close()
    return [tp.offset for tp in found]


def end_offset(bootstrap: str, topic: str, partition: int = 0) -> int:
    """How many records a partition has held (its high watermark)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        consumer.close()
    return int(high)
