"""The fleet budget's Kafka side: one small compacted topic every member writes and reads.

Each member writes its entry (keyed by its member id) every second or so and
reads every entry from the start; compaction keeps one entry per member, and
``compact,delete`` with a day's retention also drops those of members long
gone. Production clusters usually disable topic auto-creation, so the topic is
created here when missing; when that fails (no ACL, no broker) the caller falls
back to a static share, and :meth:`BudgetLink.group_members` tells it how many
members the consumer group has.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from bridge.errors import KafkaFailure
from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.failures import error_name, translates

log = logging.getLogger(__name__)

TOPIC_CONFIG: Final[Mapping[str, str]] = {
    "cleanup.policy": "compact,delete",
    "retention.ms": str(24 * 3600 * 1000),
    "segment.ms": str(3600 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}
_ADMIN_TIMEOUT: Final = 10.0
_MAX_BATCH: Final = 1000
# Entries are read promptly whatever this wait: the broker answers a fetch as soon as
# a record arrives (fetch.min.bytes 1), and holds it this long only when nothing does.
# 50 ms was twenty empty fetches a second, the busiest thread of an idle bridge
# (bench/idle.py); 500 is librdkafka's default.
_READER_SETTINGS: Final[Mapping[str, ConfigValue]] = {
    "enable.auto.commit": False,
    "fetch.wait.max.ms": 500,
    "enable.partition.eof": False,
}
_WRITER_SETTINGS: Final[Mapping[str, ConfigValue]] = {"linger.ms": 0}
# Keys meaningful to the other clients only; librdkafka warns about them otherwise.
_ADMIN_SKIP: Final = ("enable.idempotence", "acks", "linger.ms", "compression.type")


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """One entry read from the topic; ``value`` None is a tombstone."""

    member: str
    value: bytes | None
    age_seconds: float


class BudgetTopicUnavailable(KafkaFailure):
    """The topic neither exists nor could be created; the message says why (no secrets)."""


class BudgetLink:
    """Writes this member's entry and reads everyone's, from a thread (blocking calls)."""

    def __init__(
        self,
        topic: str,
        *,
        consumer_settings: Mapping[str, ConfigValue],
        producer_settings: Mapping[str, ConfigValue],
        group_id: str,
    ) -> None:
        self.topic = topic
        self._group_id = group_id
        self._admin_settings = {
            key: value for key, value in producer_settings.items() if key not in _ADMIN_SKIP
        }
        self._reader_settings = {
            **consumer_settings,
            **_READER_SETTINGS,
            "group.id": f"{group_id}.budget-reader",  # assign() only: never joins, never commits
        }
        self._writer_settings = {**producer_settings, **_WRITER_SETTINGS}
        self._reader: Consumer | None = None
        self._writer: Producer | None = None
        # A cancelled read may still be running in its worker thread when close()
        # comes: the clients are never used and closed at once.
        self._busy = threading.Lock()

    @translates
    def open(self) -> None:
        """Ensure the topic exists, then read it from the start; BudgetTopicUnavailable if not."""
        admin = AdminClient(self._admin_settings, **client_logging())
        partitions = self._partitions(admin)
        if partitions == 0:
            self._create(admin)
            partitions = 1
        self._writer = Producer(self._writer_settings, **client_logging())
        self._reader = Consumer(self._reader_settings, **client_logging())
        self._reader.assign(
            [TopicPartition(self.topic, number, OFFSET_BEGINNING) for number in range(partitions)]
        )

    @translates
    def publish(self, member: str, value: bytes | None) -> None:
        """Queue this member's entry (None: a tombstone, the member leaves)."""
        if self._writer is None:
            return
        try:
            self._writer.produce(self.topic, key=member.encode(), value=value)
        except (BufferError, KafkaException) as exc:
            log.warning("budget entry not queued", extra={"kafka_error": type(exc).__name__})
        self._writer.poll(0)

    @translates
    def read(self, timeout: float) -> list[BudgetRecord]:
        """Entries that arrived, waiting at most ``timeout`` seconds for the first."""
        with self._busy:
            if self._reader is None:
                return []
            messages = self._reader.consume(num_messages=_MAX_BATCH, timeout=timeout)
        now = time.time()
        records = []
        for message in messages:
            error = message.error()
            key = message.key()
            if error is not None or not isinstance(key, bytes):
                continue
            _kind, stamp_ms = message.timestamp()
            age = max(0.0, now - stamp_ms / 1000) if stamp_ms > 0 else 0.0
            value = message.value()
            records.append(
                BudgetRecord(key.decode(errors="replace"), value if value else None, age)
            )
        return records

    @translates
    def group_members(self) -> int | None:
        """Members of the consumer group now, for the static share; None when unknown."""
        admin = AdminClient(self._admin_settings, **client_logging())
        try:
            futures = admin.describe_consumer_groups([self._group_id], request_timeout=5.0)
            description = futures[self._group_id].result(timeout=_ADMIN_TIMEOUT)
        except (KafkaException, TimeoutError, ValueError):
            return None
        return len(description.members) or None

    @translates
    def close(self, member: str, timeout: float = 5.0) -> None:
        """Say goodbye (a tombstone) so the others take this member's share at once."""
        if self._writer is not None:
            self.publish(member, None)
            self._writer.flush(timeout)
            self._writer = None
        with self._busy:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def _partitions(self, admin: AdminClient) -> int:
        # All topics, not list_topics(topic=...): naming one makes auto-creation create it.
        try:
            metadata = admin.list_topics(timeout=_ADMIN_TIMEOUT)
        except KafkaException as exc:
            raise BudgetTopicUnavailable(f"cannot list topics: {error_name(exc)}") from None
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None:
            return 0
        return len(found.partitions)

    def _create(self, admin: AdminClient) -> None:
        new = NewTopic(self.topic, num_partitions=1, config=dict(TOPIC_CONFIG))
        try:
            admin.create_topics([new], operation_timeout=_ADMIN_TIMEOUT)[self.topic].result(
                timeout=_ADMIN_TIMEOUT
            )
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return  # another member created it meanwhile
            raise BudgetTopicUnavailable(f"cannot create it: {error_name(exc)}") from None
        log.info("created the budget topic", extra={"topic": self.topic})
