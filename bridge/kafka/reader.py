"""Read one topic from start to a fixed end, with progress committed under a group.

``vibes-bridge replay`` reads the dead-letter topic this way: it assigns every
partition itself (no group membership, so no rebalance can move work away
mid-replay), starts from the group's committed positions, and stops at the end
offsets it saw when it started, so records appended meanwhile (its own
``--requeue`` among them) wait for the next replay instead of looping.
``vibes-bridge explain`` reads a time window instead (:meth:`BoundedReader.start_between`):
from each partition's first record at or after the window's start to its first
record at or after the window's end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bridge.errors import KafkaFailure
from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.consumer import ConsumerTrouble, record_or_trouble
from bridge.kafka.failures import translates
from bridge.records import Partition, Position, SourceRecord

_METADATA_TIMEOUT: Final = 10.0
_WINDOW_BATCH: Final = 500
_WINDOW_FETCH_SECONDS: Final = 0.5


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

    @translates
    def start_between(self, since_ms: int, until_ms: int) -> None:
        """Fix the window [since_ms, until_ms) by record timestamps (``offsets_for_times``)
        and assign each partition at the window's first record; nothing is committed."""
        highs: dict[Partition, int] = {}
        for partition in self._partitions:
            _low, highs[partition] = self._consumer.get_watermark_offsets(
                TopicPartition(*partition), timeout=_METADATA_TIMEOUT, cached=False
            )
        starts = self._offsets_at(since_ms, highs)
        self._ends = self._offsets_at(until_ms, highs)
        self._starts = {p: min(starts[p], self._ends[p]) for p in self._partitions}
        self._consumer.assign([TopicPartition(*p, self._starts[p]) for p in self._partitions])

    def _offsets_at(self, time_ms: int, highs: dict[Partition, int]) -> dict[Partition, int]:
        """Each partition's first offset whose timestamp is at or after ``time_ms``
        (its end when there is none)."""
        found = self._consumer.offsets_for_times(
            [TopicPartition(*p, time_ms) for p in self._partitions], timeout=_METADATA_TIMEOUT
        )
        offsets = {(tp.topic, tp.partition): tp.offset for tp in found}
        return {p: offsets[p] if offsets.get(p, -1) >= 0 else highs[p] for p in self._partitions}

    def _committed(self) -> dict[Partition, int]:
        found = self._consumer.committed(
            [TopicPartition(*partition) for partition in self._partitions],
            timeout=_METADATA_TIMEOUT,
        )
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def end_of(self, record: SourceRecord) -> int:
        """The end offset fixed at start for ``record``'s partition (records past it are
        fetched, since partitions are read together, but not part of the range)."""
        return self._ends.get((record.topic, record.partition), 0)

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


class WindowRead(NamedTuple):
    """How a window was read: records handed over, and whether it ended at the window's end."""

    records: int
    complete: bool


def read_window(
    settings: Mapping[str, ConfigValue],
    topic: str,
    window: tuple[int, int],
    take: Callable[[SourceRecord], None],
    *,
    max_records: int,
    deadline_seconds: float,
) -> WindowRead:
    """Hand every record of ``topic`` timestamped in ``window`` (since, until: epoch ms) to
    ``take``, stopping at the window's end, after ``max_records``, or at the deadline;
    raises :class:`TopicUnavailable`. Fetch errors are skipped: the deadline bounds them."""
    reader = BoundedReader(settings, topic)
    try:
        reader.start_between(*window)
        deadline = time.monotonic() + deadline_seconds
        records = 0
        while not reader.reached_end():
            if records >= max_records or time.monotonic() >= deadline:
                return WindowRead(records, complete=False)
            batch = reader.fetch(min(_WINDOW_BATCH, max_records - records), _WINDOW_FETCH_SECONDS)
            for item in batch:
                if isinstance(item, SourceRecord) and item.offset < reader.end_of(item):
                    take(item)
                    records += 1
        return WindowRead(records, complete=True)
    finally:
        reader.close()
