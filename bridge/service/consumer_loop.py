"""The consumer thread: fetch, prepare, track, hand over, commit, and answer rebalances.

One thread owns the confluent-kafka consumer (the architecture page says why):
it fetches records, decodes and maps them (``stages.prepare``), registers each
in the offset tracker, writes immediate dead letters, and hands the events to
the asyncio loop. It also commits, so commits and rebalance callbacks never
race. It never blocks on delivery: when in-flight work reaches its bounds it
pauses the partitions instead, and keeps polling so the group keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.codecs import Decoder
from bridge.errors import SchemaRegistryUnavailable
from bridge.kafka.consumer import ConsumerTrouble, KafkaSource, Partition
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.records import SourceRecord
from bridge.service.dispatch import Delivery, Dispatcher
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.stages import PreparedRecord, prepare

log = logging.getLogger(__name__)

_TROUBLE_LOG_INTERVAL_SECONDS = 60.0
# How long an assignment waits for the group's committed positions (the lag's
# start before this process commits); on a timeout the lag starts with the first record.
_COMMITTED_LOOKUP_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """The consumer thread's bounds and cadences (from ``delivery`` in the file)."""

    max_pending_records: int
    max_pending_bytes: int
    max_event_age_seconds: float | None
    shutdown_timeout_seconds: float
    revoke_timeout_seconds: float = 10.0
    commit_interval_seconds: float = 1.0
    lag_interval_seconds: float = 5.0
    fetch_batch: int = 500
    fetch_timeout_seconds: float = 0.2
    registry_backoff_seconds: tuple[float, float] = (1.0, 30.0)


class ConsumerLoop:
    """Runs on its own thread until :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        *,
        source_factory: Callable[[ConsumerLoop], KafkaSource],
        outbox: DeadLetterOutbox,
        decoders: Mapping[str, Decoder],
        engine: Engine,
        tracker: OffsetTracker,
        dispatcher: Dispatcher,
        loop: asyncio.AbstractEventLoop,
        metrics: BridgeMetrics,
        health: Health,
        settings: LoopSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source_factory = source_factory
        self._outbox = outbox
        self._decoders = decoders
        self._engine = engine
        self._tracker = tracker
        self._dispatcher = dispatcher
        self._loop = loop
        self._metrics = metrics
        self._health = health
        self._settings = settings
        self._clock = clock
        self._stop = threading.Event()
        self._closing = False
        self._paused = False
        self._assignment_changed = False
        self._held: dict[Partition, float] = {}  # paused by a registry outage, until when
        self._registry_failures: dict[Partition, int] = {}
        self._next_commit = 0.0
        self._next_lag = 0.0
        self._source: KafkaSource | None = None
        self._trouble_logged: dict[str, float] = {}
        # A reload's rules, waiting for the thread to take them between batches.
        self._next_rules: tuple[Mapping[str, Decoder], Engine, Callable[[], None]] | None = None
        self._rules_lock = threading.Lock()

    # ------------------------------------------------------------------ thread

    def use_rules(
        self, decoders: Mapping[str, Decoder], engine: Engine, retire: Callable[[], None]
    ) -> None:
        """Switch to reloaded rules before the next batch (any thread; returns at once).

        The thread swaps between records, so a record is mapped wholly by one
        file's rules, and events already mapped are delivered as they are. It
        calls ``retire`` once the old decoders can no longer be in use.
        """
        with self._rules_lock:
            superseded = self._next_rules
            if superseded is not None:  # never taken: retire what both replaced, on adoption
                retire = _both(superseded[2], retire)
            self._next_rules = (decoders, engine, retire)

    def _adopt_rules(self) -> None:
        with self._rules_lock:
            pending, self._next_rules = self._next_rules, None
        if pending is not None:
            self._decoders, self._engine, retire = pending
            retire()

    def stop(self) -> None:
        """Ask the thread to drain and leave (any thread; returns at once)."""
        self._stop.set()

    def run(self) -> None:
        """The thread's body: consume until stopped, then drain and close."""
        self._source = self._source_factory(self)
        self._health.subscribed = True
        try:
            while not self._stop.is_set():
                self._turn(self._source)
            self._drain(self._source)
        finally:
            self._closing = True
            self._source.close()
            remaining = self._outbox.flush(self._settings.shutdown_timeout_seconds)
            if remaining:
                log.error("dead letters not acknowledged at exit", extra={"count": remaining})
            self._health.subscribed = False

    def _turn(self, source: KafkaSource) -> None:
        self._health.consumer_alive()
        self._release_held(source)
        # Never fetch more than the room left under the in-flight bound: the bound
        # then holds to the record, and a paused consumer still polls (fetching none).
        room = self._settings.max_pending_records - self._tracker.records_in_flight
        batch = source.fetch(
            max(1, min(self._settings.fetch_batch, room)), self._settings.fetch_timeout_seconds
        )
        # After the fetch, not before: a record fetched while a reload was applied is
        # mapped by the new rules, so whatever is produced after a reload gets them.
        self._adopt_rules()
        deliveries = self._take(source, batch)
        if deliveries:
            self._loop.call_soon_threadsafe(self._dispatcher.submit, deliveries)
        self._outbox.serve()
        self._apply_back_pressure(source)
        now = self._clock()
        if now >= self._next_commit:
            self._commit(source)
            self._next_commit = now + self._settings.commit_interval_seconds
        if now >= self._next_lag:
            self._export_lag(source)
            self._next_lag = now + self._settings.lag_interval_seconds

    # ------------------------------------------------------------------ records

    def _take(
        self, source: KafkaSource, batch: list[SourceRecord | ConsumerTrouble]
    ) -> list[Delivery]:
        deliveries: list[Delivery] = []
        skip: set[Partition] = set()  # held by a registry outage during this batch
        now_ms = int(time.time() * 1000)
        for item in batch:
            if isinstance(item, ConsumerTrouble):
                self._report_trouble(item)
                continue
            partition = (item.topic, item.partition)
            if partition in skip:
                continue
            self._metrics.records_consumed.labels(item.topic).inc()
            try:
                prepared = prepare(
                    item,
                    self._decoders,
                    self._engine,
                    max_event_age_seconds=self._settings.max_event_age_seconds,
                    now_ms=now_ms,
                )
            except SchemaRegistryUnavailable:
                self._hold(source, partition, item.offset)
                skip.add(partition)
                continue
            self._registry_failures.pop(partition, None)
            deliveries.extend(self._track(prepared))
        return deliveries

    def _report_trouble(self, trouble: ConsumerTrouble) -> None:
        """Log a fetch error once per kind and minute: a broker outage repeats it every turn."""
        now = self._clock()
        last = self._trouble_logged.get(trouble.code)
        if last is None or now - last >= _TROUBLE_LOG_INTERVAL_SECONDS:
            self._trouble_logged[trouble.code] = now
            log.warning(
                "kafka fetch problem",
                extra={"kafka_error": trouble.code, "retriable": trouble.retriable},
            )

    def _track(self, prepared: PreparedRecord) -> list[Delivery]:
        record = prepared.record
        size = len(record.value or b"") + len(record.key or b"")
        ticket = self._tracker.add(
            record.topic, record.partition, record.offset, units=prepared.units, size=size
        )
        if not prepared.matched:
            self._metrics.records_unmatched.labels(record.topic).inc()
        for event in prepared.events:
            self._metrics.mapped(event)
        for letter in prepared.dead_letters:
            self._outbox.write(letter, ticket)
        return [Delivery(event, ticket) for event in prepared.events]

    def _hold(self, source: KafkaSource, partition: Partition, offset: int) -> None:
        """A registry outage: fetch this partition again from ``offset`` after a backoff."""
        failures = self._registry_failures.get(partition, 0) + 1
        self._registry_failures[partition] = failures
        first, cap = self._settings.registry_backoff_seconds
        self._held[partition] = self._clock() + min(cap, first * 2 ** (failures - 1))
        source.pause([partition])
        source.seek(partition, offset)
        if failures == 1:
            log.warning(
                "schema registry unavailable; retrying the partition's record",
                extra={"topic": partition[0], "partition": partition[1]},
            )

    def _release_held(self, source: KafkaSource) -> None:
        now = self._clock()
        due = [partition for partition, until in self._held.items() if until <= now]
        for partition in due:
            del self._held[partition]
        if due and not self._paused:  # else back-pressure resumes them with the rest
            source.resume(due)

    # ------------------------------------------------------------------ back-pressure

    def _apply_back_pressure(self, source: KafkaSource) -> None:
        full = (
            self._tracker.records_in_flight >= self._settings.max_pending_records
            or self._tracker.bytes_in_flight >= self._settings.max_pending_bytes
        )
        roomy = (
            self._tracker.records_in_flight <= self._settings.max_pending_records // 2
            and self._tracker.bytes_in_flight <= self._settings.max_pending_bytes // 2
        )
        if self._assignment_changed:
            # librdkafka keeps a partition's pause flag across a rebalance: a partition
            # paused when it was lost or revoked comes back paused, and would never be
            # fetched again while the loop believes it runs. So after every change each
            # assigned partition is set to the state the loop wants, whatever it had.
            self._set_paused(source, full or (self._paused and not roomy))
            self._assignment_changed = False
        elif full and not self._paused:
            self._set_paused(source, True)
        elif self._paused and roomy:
            self._set_paused(source, False)

    def _set_paused(self, source: KafkaSource, paused: bool) -> None:
        assigned = source.assignment()
        if paused:
            source.pause(assigned)
        else:  # partitions held by a registry outage stay paused until their hold ends
            source.resume([p for p in assigned if p not in self._held])
        self._paused = paused
        self._metrics.consumer_paused.set(len(assigned) if paused else 0)

    # ------------------------------------------------------------------ commits

    def _commit(self, source: KafkaSource, partitions: list[Partition] | None = None) -> None:
        positions = self._tracker.positions_to_commit(partitions)
        if positions and source.commit(positions):
            for (topic, _partition), count in self._tracker.committed(positions).items():
                self._metrics.records_committed.labels(topic).inc(count)
            self._health.consumer_alive()

    def _export_lag(self, source: KafkaSource) -> None:
        """Lag and the oldest unfinished record's age, per assigned partition.

        Lag is measured from the last commit, or before one from where the
        assignment started (the group's committed position, else the first record
        consumed), so a partition whose first record is stuck shows its lag too.
        """
        assigned = source.assignment()
        for (topic, partition), high in source.high_watermarks(assigned).items():
            position = self._tracker.lag_position(topic, partition)
            if position is not None:
                lag = max(0, high - position)
                self._metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        ages = self._tracker.oldest_unfinished_ages()
        for topic, partition in assigned:
            age = ages.get((topic, partition), 0.0)
            self._metrics.oldest_unfinished_age.labels(topic, str(partition)).set(age)

    # ------------------------------------------------------------------ rebalances

    def partitions_assigned(self, partitions: list[Partition]) -> None:
        starts = (
            self._source.committed(partitions, _COMMITTED_LOOKUP_SECONDS)
            if self._source is not None
            else {}
        )
        for topic, partition in partitions:
            self._tracker.assign(topic, partition, start=starts.get((topic, partition)))
        self._assignment_changed = True
        self._next_lag = 0.0  # the new partitions' series from this turn on
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def partitions_revoked(self, partitions: list[Partition]) -> None:
        """Finish what can finish in a bounded time, commit it, then let the partitions go."""
        if not self._closing:
            self._wait_for(partitions, self._settings.revoke_timeout_seconds)
        if self._source is not None:
            self._commit(self._source, partitions)
        self._let_go(partitions)
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def partitions_lost(self, partitions: list[Partition]) -> None:
        """Another member owns them already: committing now would be refused; just let go."""
        self._let_go(partitions)
        log.warning("partitions lost", extra={"partitions": _names(partitions)})

    def _let_go(self, partitions: list[Partition]) -> None:
        for topic, partition in partitions:
            self._tracker.revoke(topic, partition)
            self._held.pop((topic, partition), None)
            self._registry_failures.pop((topic, partition), None)
            for gauge in (self._metrics.consumer_lag, self._metrics.oldest_unfinished_age):
                with contextlib.suppress(KeyError):  # a partition whose series was never exported
                    gauge.remove(topic, str(partition))
        self._loop.call_soon_threadsafe(self._dispatcher.forget, set(partitions))

    def _wait_for(self, partitions: list[Partition], timeout: float) -> None:
        """Serve dead-letter acknowledgements until ``partitions`` have nothing pending."""
        deadline = self._clock() + timeout
        while self._tracker.pending_in(partitions) and self._clock() < deadline:
            self._health.consumer_alive()
            self._outbox.serve(0.05)

    # ------------------------------------------------------------------ shutdown

    def _drain(self, source: KafkaSource) -> None:
        """Stop fetching, let in-flight work finish within the deadline, commit what finished."""
        source.pause(source.assignment())
        deadline = self._clock() + self._settings.shutdown_timeout_seconds
        while self._tracker.records_in_flight and self._clock() < deadline:
            self._health.consumer_alive()
            self._outbox.serve(0.05)
        left = self._tracker.records_in_flight
        if left:
            log.warning("shutdown deadline reached with work in flight", extra={"records": left})
        self._commit(source)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        first()
        second()

    return run


def _names(partitions: list[Partition]) -> list[str]:
    return [f"{topic}[{partition}]" for topic, partition in partitions]
