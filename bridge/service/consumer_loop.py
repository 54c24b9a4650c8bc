"""The consumer thread: fetch, prepare, track, hand over, commit, and answer rebalances.

One thread owns the confluent-kafka consumer (the architecture page says why):
it fetches records, decodes and maps them (``stages.prepare``), registers each
in the offset tracker, writes immediate dead letters, and hands the events to
the asyncio loop. It also commits, so commits and rebalance callbacks never
race. It never blocks on delivery: when in-flight work reaches its bounds it
pauses the partitions instead, and keeps polling so the group keeps it.

The loop only orders the turn; its parts decide: ``record_work`` (track and
commit, shared with replay), ``holds`` (registry outages), ``back_pressure``
(pause and resume) and ``committer`` (commit and lag cadence).

The parking consumer (docs/isolation.md) is one of these too, on the parked
topic with trackers of its own: its ``prepare_record`` reads a parked event
back instead of decoding and mapping with the rules.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from bridge.codecs import Decoder
from bridge.errors import SchemaRegistryUnavailable
from bridge.kafka.consumer import ConsumerTrouble
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.records import Partition, Position, SourceRecord
from bridge.service.back_pressure import BackPressure, Verdict
from bridge.service.committer import Committer
from bridge.service.dispatch import Delivery
from bridge.service.health import Health
from bridge.service.holds import PartitionHolds
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.record_work import LoopSettings, RecordWork
from bridge.service.stages import PreparedRecord, prepare
from bridge.tracing import NO_TRACING, Tracing

__all__ = ["ConsumerLoop", "LoopSettings", "Source"]

log = logging.getLogger(__name__)

_TROUBLE_LOG_INTERVAL_SECONDS = 60.0
# How long an assignment waits for the group's committed positions (the lag's
# start before this process commits); on a timeout the lag starts with the first record.
_COMMITTED_LOOKUP_SECONDS = 2.0


class Source(Protocol):
    """The :class:`~bridge.kafka.consumer.KafkaSource` methods the loop uses (tests fake them)."""

    def fetch(self, max_records: int, timeout: float) -> list[SourceRecord | ConsumerTrouble]: ...

    def pause(self, partitions: Iterable[Partition]) -> None: ...

    def resume(self, partitions: Iterable[Partition]) -> None: ...

    def seek(self, partition: Partition, offset: int) -> None: ...

    def assignment(self) -> list[Partition]: ...

    def commit(self, positions: Mapping[Partition, Position]) -> bool: ...

    def committed(
        self, partitions: Iterable[Partition], timeout: float
    ) -> dict[Partition, Position]: ...

    def high_watermarks(self, partitions: Iterable[Partition]) -> dict[Partition, int]: ...

    def close(self) -> None: ...


class Deliveries(Protocol):
    """The dispatcher's side the loop calls, on the asyncio loop."""

    def submit(self, deliveries: list[Delivery]) -> None: ...

    def forget(self, partitions: set[Partition]) -> None: ...


class ConsumerLoop:
    """Runs on its own thread until :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        *,
        source_factory: Callable[[ConsumerLoop], Source],
        work: RecordWork,
        outbox: DeadLetterOutbox,
        rules: tuple[Mapping[str, Decoder], Engine],
        dispatcher: Deliveries,
        loop: asyncio.AbstractEventLoop,
        metrics: BridgeMetrics,
        health: Health,
        settings: LoopSettings,
        clock: Callable[[], float] = time.monotonic,
        tracing: Tracing = NO_TRACING,
        prepare_record: Callable[[SourceRecord], PreparedRecord] | None = None,
    ) -> None:
        self._prepare_record = prepare_record
        self._source_factory = source_factory
        self._tracing = tracing
        self._work = work
        self._tracker = work.tracker
        self._outbox = outbox
        self._decoders, self._engine = rules
        self._dispatcher = dispatcher
        self._loop = loop
        self._metrics = metrics
        self._health = health
        self._settings = settings
        self._clock = clock
        self._holds = PartitionHolds(settings.registry_backoff_seconds, clock)
        self._pressure = BackPressure(settings.max_pending_records, settings.max_pending_bytes)
        self._committer = Committer(
            work,
            metrics,
            health,
            commit_interval=settings.commit_interval_seconds,
            lag_interval=settings.lag_interval_seconds,
            clock=clock,
        )
        self._stop = threading.Event()
        self._closing = False
        self._source: Source | None = None
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

    def open(self) -> Source:
        """Subscribe (``run`` calls it first; unit tests then drive :meth:`turn` themselves)."""
        self._source = self._source_factory(self)
        self._health.subscribed = True
        return self._source

    def run(self) -> None:
        """The thread's body: consume until stopped, then drain and close."""
        source = self.open()
        try:
            while not self._stop.is_set():
                self.turn(source)
            self._drain(source)
        finally:
            self._closing = True
            source.close()
            remaining = self._outbox.flush(self._settings.shutdown_timeout_seconds)
            if remaining:
                log.error("dead letters not acknowledged at exit", extra={"count": remaining})
            self._health.subscribed = False

    def turn(self, source: Source) -> None:
        """One turn: release holds, fetch, prepare and track, hand over, serve, pause, commit."""
        self._health.consumer_alive()
        self._release_held(source)
        batch = source.fetch(self._room(), self._settings.fetch_timeout_seconds)
        # After the fetch, not before: a record fetched while a reload was applied is
        # mapped by the new rules, so whatever is produced after a reload gets them.
        self._adopt_rules()
        deliveries = self._take(source, batch)
        if deliveries:
            self._loop.call_soon_threadsafe(self._dispatcher.submit, deliveries)
        self._outbox.serve()
        self._apply_back_pressure(source)
        self._committer.tick(source)

    def _room(self) -> int:
        """Never fetch more than the room left under the in-flight bound: the bound then
        holds to the record, and a paused consumer still polls (fetching none)."""
        room = self._settings.max_pending_records - self._tracker.records_in_flight
        return max(1, min(self._settings.fetch_batch, room))

    # ------------------------------------------------------------------ records

    def _take(self, source: Source, batch: list[SourceRecord | ConsumerTrouble]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        skip: set[Partition] = set()  # held by a registry outage during this batch
        finished: Counter[str] = Counter()  # finished before a restart, per topic
        now_ms = int(time.time() * 1000)
        for item in batch:
            if isinstance(item, ConsumerTrouble):
                self._report_trouble(item)
                continue
            partition = (item.topic, item.partition)
            if partition in skip:
                continue
            if self._work.skip_finished(item):
                finished[item.topic] += 1
                continue
            self._metrics.pipeline.consumed(item.topic)
            if self._prepare_record is not None:
                deliveries.extend(self._work.track(self._prepare_record(item)))
                continue
            span = self._tracing.record_started(item)
            try:
                prepared = prepare(
                    item,
                    self._decoders,
                    self._engine,
                    max_event_age_seconds=self._settings.max_event_age_seconds,
                    now_ms=now_ms,
                    trace=span.ids,
                )
            except SchemaRegistryUnavailable:
                span.finished(None)
                self._hold(source, partition, item.offset)
                skip.add(partition)
                continue
            span.finished(prepared)
            self._holds.succeeded(partition)
            deliveries.extend(self._work.track(prepared))
        for topic, count in finished.items():
            self._metrics.pipeline.skipped_finished(topic, count)
            log.debug("skipped records finished before", extra={"topic": topic, "records": count})
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

    def _hold(self, source: Source, partition: Partition, offset: int) -> None:
        """A registry outage: fetch this partition again from ``offset`` after a backoff."""
        first = self._holds.hold(partition)
        source.pause([partition])
        source.seek(partition, offset)
        if first:
            log.warning(
                "schema registry unavailable; retrying the partition's record",
                extra={"topic": partition[0], "partition": partition[1]},
            )

    def _release_held(self, source: Source) -> None:
        due = self._holds.due()
        if due and not self._pressure.paused:  # else back-pressure resumes them with the rest
            source.resume(due)

    def _apply_back_pressure(self, source: Source) -> None:
        verdict = self._pressure.decide(
            self._tracker.records_in_flight, self._tracker.bytes_in_flight
        )
        if verdict is Verdict.PAUSE:
            source.pause(source.assignment())
            self._metrics.pipeline.paused(len(source.assignment()))
        elif verdict is Verdict.RESUME:
            source.resume([p for p in source.assignment() if p not in self._holds])
            self._metrics.pipeline.paused(0)

    # ------------------------------------------------------------------ rebalances

    def partitions_assigned(self, partitions: list[Partition]) -> None:
        starts = (
            self._source.committed(partitions, _COMMITTED_LOOKUP_SECONDS)
            if self._source is not None
            else {}
        )
        for topic, partition in partitions:
            listed = self._tracker.assign(topic, partition, start=starts.get((topic, partition)))
            if listed:
                log.info(
                    "the group's commit lists finished records past its position; they are skipped",
                    extra={"topic": topic, "partition": partition, "records": listed},
                )
        self._pressure.assignment_changed()
        self._committer.lag_now()
        log.info("partitions assigned", extra={"partitions": _names(partitions)})

    def partitions_revoked(self, partitions: list[Partition]) -> None:
        """Finish what can finish in a bounded time, commit it, then let the partitions go."""
        if not self._closing:
            self._serve_while(
                lambda: self._tracker.pending_in(partitions) > 0,
                self._settings.revoke_timeout_seconds,
            )
        if self._source is not None:
            self._committer.commit(self._source, partitions)
        self._let_go(partitions)
        log.info("partitions revoked", extra={"partitions": _names(partitions)})

    def partitions_lost(self, partitions: list[Partition]) -> None:
        """Another member owns them already: committing now would be refused; just let go."""
        self._let_go(partitions)
        log.warning("partitions lost", extra={"partitions": _names(partitions)})

    def _let_go(self, partitions: list[Partition]) -> None:
        for topic, partition in partitions:
            self._tracker.revoke(topic, partition)
        self._holds.forget(partitions)
        self._committer.forget(partitions)
        self._loop.call_soon_threadsafe(self._dispatcher.forget, set(partitions))

    def _serve_while(self, busy: Callable[[], bool], timeout: float) -> None:
        """Serve dead-letter acknowledgements while ``busy``, for at most ``timeout`` seconds."""
        deadline = self._clock() + timeout
        while busy() and self._clock() < deadline:
            self._health.consumer_alive()
            self._outbox.serve(self._settings.serve_wait_seconds)

    # ------------------------------------------------------------------ shutdown

    def _drain(self, source: Source) -> None:
        """Stop fetching, let in-flight work finish within the deadline, commit what finished."""
        source.pause(source.assignment())
        self._serve_while(
            lambda: self._tracker.records_in_flight > 0, self._settings.shutdown_timeout_seconds
        )
        left = self._tracker.records_in_flight
        if left:
            log.warning("shutdown deadline reached with work in flight", extra={"records": left})
        self._committer.commit(source)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        first()
        second()

    return run


def _names(partitions: list[Partition]) -> list[str]:
    return [f"{topic}[{partition}]" for topic, partition in partitions]
