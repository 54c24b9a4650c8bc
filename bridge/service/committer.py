"""The consumer loop's commits and lag: commit what finished, show how far behind each partition is.

Commits run on the consumer's thread only (so they never race the rebalance
callbacks librdkafka runs there), every ``commit_interval_seconds`` and when
partitions are revoked or the loop drains. The lag and the oldest unfinished
record's age are exported every ``lag_interval_seconds`` and at once after an
assignment. Split from the loop so the cadence and the gauges are tested with a
fake source and a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from bridge.metrics import BridgeMetrics
from bridge.records import Partition, Position
from bridge.service.health import Health
from bridge.service.record_work import RecordWork


class CommitSource(Protocol):
    """The parts of :class:`~bridge.kafka.consumer.KafkaSource` the committer uses."""

    def commit(self, positions: Mapping[Partition, Position]) -> bool: ...

    def assignment(self) -> list[Partition]: ...

    def high_watermarks(self, partitions: Iterable[Partition]) -> dict[Partition, int]: ...


class Committer:
    """Commits finished positions and exports lag, each on its own cadence."""

    def __init__(
        self,
        work: RecordWork,
        metrics: BridgeMetrics,
        health: Health,
        *,
        commit_interval: float,
        lag_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._work = work
        self._metrics = metrics
        self._health = health
        self._commit_interval = commit_interval
        self._lag_interval = lag_interval
        self._clock = clock
        self._next_commit = 0.0
        self._next_lag = 0.0

    def tick(self, source: CommitSource) -> None:
        """Commit and export lag when each is due (once per loop turn)."""
        now = self._clock()
        if now >= self._next_commit:
            self.commit(source)
            self._next_commit = now + self._commit_interval
        if now >= self._next_lag:
            self.export_lag(source)
            self._next_lag = now + self._lag_interval

    def lag_now(self) -> None:
        """New partitions: their series from the next turn on, not a lag interval later."""
        self._next_lag = 0.0

    def commit(self, source: CommitSource, partitions: list[Partition] | None = None) -> None:
        moved = self._work.commit(source, partitions)
        if not moved:
            return
        for (topic, _partition), count in moved.items():
            self._metrics.pipeline.committed(topic, count)
        self._health.consumer_alive()

    def export_lag(self, source: CommitSource) -> None:
        """Lag and the oldest unfinished record's age, per assigned partition.

        Lag is measured from the last commit, or before one from where the
        assignment started (the group's committed position, else the first record
        consumed), so a partition whose first record is stuck shows its lag too.
        """
        tracker = self._work.tracker
        assigned = source.assignment()
        for (topic, partition), high in source.high_watermarks(assigned).items():
            position = tracker.lag_position(topic, partition)
            if position is not None:
                lag = max(0, high - position)
                self._metrics.pipeline.lag(topic, partition, lag)
        ages = tracker.oldest_unfinished_ages()
        for topic, partition in assigned:
            age = ages.get((topic, partition), 0.0)
            self._metrics.pipeline.oldest_unfinished_age(topic, partition, age)

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Revoked or lost: their series go, another member exports them now."""
        for topic, partition in partitions:
            self._metrics.pipeline.partition_forgotten(topic, partition)
