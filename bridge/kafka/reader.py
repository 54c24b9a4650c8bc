"""Read one topic from start to a fixed end, with progress committed under a group.

``vibes-bridge replay`` reads the dead-letter topic this way: it assigns every
partition itself (no group membership, so no rebalance can move work away
mid-replay), starts from the group's committed positions, and stops at the end
offsets it saw when it started, so records appended meanwhile (its own
``--requeue`` among them) wait for the next replay instead of looping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bridge.errors import KafkaFailure
from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.consumer import ConsumerTrouble, record_or_trouble
from bridge.kafka.failures import translates
from bridge.records import Partition, Position, SourceRecord

_METADATA_TIMEOUT: Final = 10.0


class TopicUnavailable(KafkaFailure):
    """The topic does not exist or the broker did not answer (the message says which)."""


class BoundedReader:
    """Assigned reader of every partition of one topic, up to the end offsets seen at start."""

    @translates
    def __init__(self, settings: Mapping[str, ConfigValue], topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(dict(settings), **client_logging())
        self._partitions = self._list_partitions()
        self._ends: dict[Partition, int] = {}
        self._starts: dict[Partition, int] = {}

    def _list_partitions(self) -> list[Partition]:
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=_METADATA_TIMEOUT)
        except KafkaException as exc:
            raise TopicUnavailable(f"the broker did not answer: {exc.args[0]}") from None
        found = metadata.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise TopicUnavailable(f"topic {self.topic} does not exist")
        return [(self.topic, number) for number in sorted(found.partitions)]

    @translates
    def start(self, *, from_beginning: bool) -> None:
        """Fix the end offsets and assign each partition at its committed position (or start)."""
        lows: dict[Partition, int] = {}
        for partition in self._partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(*partition), timeout=_METADATA_TIMEOUT, cached=False
            )
            lows[partition], self._ends[partition] = low, high
        committed = {} if from_beginning else self._committed()
        assignment = []
        for partition in self._partitions:
            position = committed.get(partition)
            start = OFFSET_BEGINNING if position is None else position
            self._starts[partition] = lows[partition] if position is None else position
            assignment.append(TopicPartition(*partition, start))
        self._consumer.assign(assignment)

    def _committed(self) -> dict[Partition, int]:
        found = self._consumer.committed(
            [TopicPartition(*partition) for partition in self._partitions],
            timeout=_METADATA_TIMEOUT,
        )
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    @property
    def partitions(self) -> list[Partition]:
        return list(self._partitions)

    def backlog(self) -> int:
        """Records between the start positions and the end offsets (an upper bound)."""
        return sum(max(0, self._ends[p] - self._starts[p]) for p in self._partitions)

    @translates
    def fetch(self, max_records: int, timeout: float) -> list[SourceRecord | ConsumerTrouble]:
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        return [record_or_trouble(message) for message in messages]

    @translates
    def reached_end(self) -> bool:
        """Whether every partition was read up to the end offset seen at start."""
        positions = self._consumer.position(
            [TopicPartition(*partition) for partition in self._partitions]
        )
        for tp in positions:
            partition = (tp.topic, tp.partition)
            position = tp.offset if tp.offset >= 0 else self._starts[partition]
            if position < self._ends[partition]:
                return False
        return True

    def commit(self, positions: Mapping[Partition, Position]) -> bool:
        """Commit ``positions`` (next offset to read) under the group; False if refused.

        Offsets alone: replay starts again from the committed position and reads
        no metadata, so it stores none.
        """
        if not positions:
            return True
        offsets = [TopicPartition(t, p, position.offset) for (t, p), position in positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:
            return False
        return True

    @translates
    def close(self) -> None:
        self._consumer.close()
