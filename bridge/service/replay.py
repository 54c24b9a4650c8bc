"""`vibes-bridge replay`: dead letters back through the current rules and the run's delivery path.

The pure decisions (rebuild the source record, apply the filters, tally) live in
``bridge.replay``; this module wires them to Kafka and to the same parts
``run`` uses: ``stages.prepare`` with the current rules, the per-key
:class:`Dispatcher` over the :class:`Deliverer` (rate budget, retries,
credentials), and the :class:`OffsetTracker`, here over the dead-letter topic's
offsets, so progress is committed only up to the last letter whose work is
finished, and an interrupted replay resumes there.

A record that fails again is reported and, without ``--requeue``, not written
back: the replay's own output must never feed a later replay by accident. The
callback receiver's ``invalid_callback`` letters are not source records: a
replay whose filters take them counts and lists them by position, sends nothing
for them and moves past them (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bridge.dead_letters import DeadLetter
from bridge.delivery import VibesClient
from bridge.errors import SchemaRegistryUnavailable
from bridge.kafka.config import consumer_config, producer_config
from bridge.kafka.consumer import ConsumerTrouble
from bridge.kafka.producer import DeadLetterProducer
from bridge.kafka.reader import BoundedReader
from bridge.loading import LoadedBridge
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.records import SourceRecord
from bridge.replay import NotADeadLetter, ReplayLetter, ReplayReport, Selection, read_letter
from bridge.replay.report import Failure, position
from bridge.replay.scope import narrow_to_rule
from bridge.service.dispatch import Delivery, Dispatcher
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.stages import PreparedRecord, prepare
from bridge.service.vibes_delivery import vibes_delivery

log = logging.getLogger(__name__)

_FETCH_BATCH: Final = 500
_FETCH_TIMEOUT: Final = 0.2
_COMMIT_INTERVAL: Final = 1.0
_ROOM_WAIT: Final = 0.05  # polling for in-flight room: the tracker has no wake-up of its own

# A letter cut to fit the dead-letter topic: the original is fetched from its
# source coordinates while retained, and sent with `vibes-bridge map` or re-produced.
CUT_LETTER: Final = "cut_letter"

Output = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """The command line's choices."""

    selection: Selection
    limit: int | None = None
    dry_run: bool = False
    requeue: bool = False
    from_beginning: bool = False
    group_id: str | None = None


class _ReplayMetrics(BridgeMetrics):
    """The run's metrics, plus the delivered count the report needs."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__()
        self._report = report

    def delivered(self, event: MappedEvent, status: int, now: float | None = None) -> None:
        super().delivered(event, status, now)
        self._report.events_delivered += 1


class _FailureSink:
    """Where records that fail again go: the report, and the topic again only with --requeue."""

    def __init__(
        self,
        report: ReplayReport,
        tracker: OffsetTracker,
        outbox: DeadLetterOutbox | None,
    ) -> None:
        self._report = report
        self._tracker = tracker
        self._outbox = outbox

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        self._report.fail_letter(letter, position(ticket.topic, ticket.partition, ticket.offset))
        if self._outbox is None:
            self._tracker.finish(ticket)
            return
        self._report.requeued += 1
        self._outbox.write(letter, ticket)  # finishes the ticket once acknowledged


class RegistryOutage(RuntimeError):
    """The Schema Registry is down: the replay stops where it is, to be run again later."""


class Replay:
    """One replay run; :meth:`run` returns the report."""

    def __init__(self, loaded: LoadedBridge, options: ReplayOptions, out: Output) -> None:
        self._loaded = loaded
        self._options = options
        self._out = out
        settings = loaded.settings
        group = options.group_id or options.selection.group_id(settings.kafka.group_id)
        self.report = ReplayReport(group, options.selection.describe(), dry_run=options.dry_run)
        self._tracker = OffsetTracker()
        self._stop = asyncio.Event()
        self._limit_reached = False
        self._outbox: DeadLetterOutbox | None = None
        self._sink = _FailureSink(self.report, self._tracker, None)
        self._client: VibesClient | None = None
        self._dispatcher: Dispatcher | None = None

    def stop(self) -> None:
        """Stop fetching; in-flight work finishes (bounded) and its progress is committed."""
        self._stop.set()

    async def run(self, reader: BoundedReader) -> ReplayReport:
        await asyncio.to_thread(reader.start, from_beginning=self._options.from_beginning)
        if not self._options.dry_run:
            self._build_delivery()
        try:
            await self._read_until_end(reader)
            await self._finish(reader)
        finally:
            if self._dispatcher is not None:
                await self._dispatcher.cancel_all()
            if self._client is not None:
                await self._client.aclose()
        return self.report

    def _build_delivery(self) -> None:
        settings = self._loaded.settings
        metrics = _ReplayMetrics(self.report)
        self._client, _limiter, deliverer = vibes_delivery(self._loaded, metrics)
        if self._options.requeue:
            producer = DeadLetterProducer(
                producer_config(settings.kafka).settings, settings.dead_letter.topic
            )
            self._outbox = DeadLetterOutbox(producer, self._tracker, metrics, Health())
        self._sink = _FailureSink(self.report, self._tracker, self._outbox)
        self._dispatcher = Dispatcher(
            deliverer,
            self._tracker,
            self._sink,
            metrics,
            max_in_flight=settings.delivery.max_in_flight,
        )

    # ------------------------------------------------------------------ reading

    async def _read_until_end(self, reader: BoundedReader) -> None:
        max_pending = self._loaded.settings.delivery.max_pending_records
        next_commit = time.monotonic() + _COMMIT_INTERVAL
        while not self._stop.is_set() and not self._limit_reached:
            if await asyncio.to_thread(reader.reached_end):
                return
            if self._tracker.records_in_flight >= max_pending:
                await self._serve(_ROOM_WAIT)
                continue
            batch = await asyncio.to_thread(reader.fetch, _FETCH_BATCH, _FETCH_TIMEOUT)
            deliveries = self._take(batch)
            if deliveries and self._dispatcher is not None:
                self._dispatcher.submit(deliveries)
            await self._serve(0)
            if time.monotonic() >= next_commit:
                await self._commit(reader)
                next_commit = time.monotonic() + _COMMIT_INTERVAL

    def _take(self, batch: list[SourceRecord | ConsumerTrouble]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        for item in batch:
            if isinstance(item, ConsumerTrouble):
                log.warning("kafka fetch problem", extra={"kafka_error": item.code})
                continue
            if self._limit_reached:
                break  # not tracked, so not committed: the next replay starts here
            deliveries.extend(self._take_letter(item))
        return deliveries

    def _take_letter(self, item: SourceRecord) -> list[Delivery]:
        report = self.report
        report.read += 1
        at = position(item.topic, item.partition, item.offset)
        try:
            letter = read_letter(item)
        except NotADeadLetter as exc:
            report.fail(Failure("not_a_dead_letter", str(exc), None, "?", at))
            self._pass(item)
            return []
        if not self._options.selection.matches(letter):
            report.passed_over += 1
            self._pass(item)
            return []
        if letter.source is None:  # the receiver's invalid callback: nothing to send
            report.invalid_callback(at)
            self._pass(item)
            return []
        if letter.cut:  # cut to fit the topic: sending the cut bytes would be wrong
            source = position(letter.source.topic, letter.source.partition, letter.source.offset)
            report.fail(Failure(CUT_LETTER, ", ".join(letter.cut), letter.rule, source, at))
            self._pass(item)
            return []
        report.selected += 1
        if self._options.limit is not None and report.selected >= self._options.limit:
            self._limit_reached = True
        prepared = self._prepare(letter, letter.source)
        if not prepared.matched:
            report.skipped += 1
        if self._options.dry_run:
            self._print(prepared, at)
            return []
        return self._track(item, prepared)

    def _prepare(self, letter: ReplayLetter, source: SourceRecord) -> PreparedRecord:
        engine = self._loaded.engine
        try:
            # max_event_age is not applied: replaying old records is the operator's decision.
            prepared = prepare(
                source,
                self._loaded.decoders,
                engine,
                max_event_age_seconds=None,
                now_ms=int(time.time() * 1000),
            )
        except SchemaRegistryUnavailable:
            raise RegistryOutage(
                "the Schema Registry is unavailable: replay stopped; run it again later"
            ) from None
        current = {rule.name for rule in engine.rules_for(source.topic)}
        scoped = narrow_to_rule(prepared.events, prepared.dead_letters, letter.rule, current)
        return prepared if scoped is None else prepared.only(*scoped)

    def _print(self, prepared: PreparedRecord, at: str) -> None:
        for event in prepared.events:
            self._out(event.body + b"\n")
            self.report.events_printed += 1
        for letter in prepared.dead_letters:
            self.report.fail_letter(letter, at)

    def _track(self, item: SourceRecord, prepared: PreparedRecord) -> list[Delivery]:
        size = len(item.value or b"") + len(item.key or b"")
        ticket = self._tracker.add(
            item.topic, item.partition, item.offset, units=prepared.units, size=size
        )
        for letter in prepared.dead_letters:
            self._sink.write(letter, ticket)
        return [Delivery(event, ticket) for event in prepared.events]

    def _pass(self, item: SourceRecord) -> None:
        """A letter with nothing to do still moves the group's position past it."""
        if not self._options.dry_run:
            self._tracker.add(item.topic, item.partition, item.offset, units=0, size=0)

    # ------------------------------------------------------------------ finishing

    async def _serve(self, wait: float) -> None:
        if self._outbox is not None:
            self._outbox.serve()
        if wait:
            await asyncio.sleep(wait)

    async def _finish(self, reader: BoundedReader) -> None:
        """Let in-flight work finish (bounded once interrupted), then commit what finished."""
        if self._options.dry_run:
            return
        deadline: float | None = None
        while self._tracker.records_in_flight:
            if self._stop.is_set() and deadline is None:
                timeout = self._loaded.settings.delivery.shutdown_timeout_seconds
                deadline = time.monotonic() + timeout
            if deadline is not None and time.monotonic() >= deadline:
                break
            await self._serve(_ROOM_WAIT)
        if self._outbox is not None:
            await asyncio.to_thread(self._outbox.flush, 10.0)
            self._outbox.serve()
        await self._commit(reader)
        self.report.interrupted = self._stop.is_set()

    async def _commit(self, reader: BoundedReader) -> None:
        positions = self._tracker.positions_to_commit()
        if not positions:
            return
        accepted: bool = await asyncio.to_thread(reader.commit, positions)
        if accepted:
            self._tracker.committed(positions)


async def replay_dead_letters(
    loaded: LoadedBridge, options: ReplayOptions, out: Output
) -> ReplayReport:
    """Run one replay to the end offsets seen at its start (or until SIGINT/SIGTERM)."""
    replay = Replay(loaded, options, out)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, replay.stop)
    settings = loaded.settings
    reader_settings = consumer_config(settings.kafka, group_id=replay.report.group_id).settings
    reader = await asyncio.to_thread(BoundedReader, reader_settings, settings.dead_letter.topic)
    try:
        return await replay.run(reader)
    finally:
        await asyncio.to_thread(reader.close)
