"""One record pipeline for ``run`` and ``replay``: track a prepared record, hand out its work.

Both commands turn a consumed record into work the same way: the record is
registered in the offset tracker with one unit per event and per dead letter,
its dead letters go to the sink at once, and its events become deliveries for
the :class:`~bridge.service.dispatch.Dispatcher`. Who finishes a unit is decided
here and only here: a delivered event is finished by the dispatcher, a dead
letter by its sink (the outbox on the broker's acknowledgement; replay's sink
may finish it at once), and a record with no work at all is finished when it is
tracked. Commits go through :meth:`RecordWork.commit`, so both commands commit
only positions whose records, and all before them, are finished.

:class:`LoopSettings` are the bounds and cadences both drivers share, so the
batch size, the fetch wait and the commit interval cannot drift apart again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from bridge.config.model import DeliverySettings
from bridge.metrics import BridgeMetrics
from bridge.records import Partition, Position, SourceRecord
from bridge.service.dispatch import DeadLetterSink, Delivery
from bridge.service.offsets import OffsetTracker
from bridge.service.stages import PreparedRecord

# A revocation waits at most this long for the revoked partitions' work.
_REVOKE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """The consumer thread's bounds and cadences (from ``delivery`` in the file)."""

    max_pending_records: int
    max_pending_bytes: int
    max_event_age_seconds: float | None
    shutdown_timeout_seconds: float
    revoke_timeout_seconds: float = _REVOKE_TIMEOUT_SECONDS
    commit_interval_seconds: float = 1.0
    lag_interval_seconds: float = 5.0
    fetch_batch: int = 500
    fetch_timeout_seconds: float = 0.2
    registry_backoff_seconds: tuple[float, float] = (1.0, 30.0)
    # How long a waiting thread serves the dead-letter producer before it looks again:
    # the tracker has no wake-up of its own.
    serve_wait_seconds: float = 0.05

    @classmethod
    def from_delivery(cls, delivery: DeliverySettings) -> LoopSettings:
        """The settings ``run`` and ``replay`` both use."""
        max_age = delivery.max_event_age
        return cls(
            max_pending_records=delivery.max_pending_records,
            max_pending_bytes=delivery.max_pending_bytes,
            max_event_age_seconds=None if max_age is None else max_age.total_seconds(),
            shutdown_timeout_seconds=delivery.shutdown_timeout_seconds,
            revoke_timeout_seconds=min(_REVOKE_TIMEOUT_SECONDS, delivery.shutdown_timeout_seconds),
        )


class Committable(Protocol):
    """What commits positions: the run's group consumer, or replay's reader."""

    def commit(self, positions: Mapping[Partition, Position]) -> bool: ...


class RecordWork:
    """The tracker and the dead-letter sink, behind the three things a driver does to records."""

    def __init__(
        self, tracker: OffsetTracker, sink: DeadLetterSink, metrics: BridgeMetrics
    ) -> None:
        self.tracker = tracker
        self._sink = sink
        self._metrics = metrics

    def track(self, prepared: PreparedRecord, at: SourceRecord | None = None) -> list[Delivery]:
        """Register the record's units, write its dead letters; its events, to deliver.

        ``at`` is the record whose offset the work holds back when it is not the
        prepared one: replay's dead letter, whose topic's progress is committed.
        """
        record = prepared.record
        held = record if at is None else at
        ticket = self.tracker.add(
            held.topic, held.partition, held.offset, units=prepared.units, size=_size(held)
        )
        if not prepared.matched:
            self._metrics.pipeline.unmatched(record.topic)
        for event in prepared.events:
            self._metrics.pipeline.mapped(event)
        for letter in prepared.dead_letters:
            self._sink.write(letter, ticket)
        return [Delivery(event, ticket) for event in prepared.events]

    def pass_over(self, record: SourceRecord) -> None:
        """A record with nothing to do: finished at once, so the position moves past it."""
        self.tracker.add(record.topic, record.partition, record.offset, units=0, size=0)

    def skip_finished(self, record: SourceRecord) -> bool:
        """Pass over a record the group's commit listed as finished (a restart's skip):
        no decode, no mapping, no delivery. False: the record is to be done."""
        if not self.tracker.finished_before(record.topic, record.partition, record.offset):
            return False
        self.pass_over(record)
        return True

    def commit(
        self, target: Committable, partitions: list[Partition] | None = None
    ) -> dict[Partition, int]:
        """Commit what finished, with the finished offsets past each position as metadata;
        per partition, how many offsets the commit moved (empty when nothing moved or
        the broker refused: the next commit tries again)."""
        positions = self.tracker.positions_to_commit(partitions)
        if not positions or not target.commit(positions):
            return {}
        return self.tracker.committed(positions)


def _size(record: SourceRecord) -> int:
    return len(record.value or b"") + len(record.key or b"")
