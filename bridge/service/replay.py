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

Threading is the run's: one thread owns the reader (fetch, prepare, track, serve
the dead-letter producer, commit) and hands each batch's events to the asyncio
loop with ``call_soon_threadsafe``; delivery runs on the loop. Tracking and
committing are :class:`~bridge.service.record_work.RecordWork`'s, with the run's
:class:`~bridge.service.record_work.LoopSettings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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
from bridge.service.blocking import call_blocking
from bridge.service.dispatch import Delivery, Dispatcher, FanOut
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.outbox import DeadLetterOutbox
from bridge.service.record_work import LoopSettings, RecordWork
from bridge.service.stages import PreparedRecord, prepare
from bridge.service.vibes_delivery import vibes_delivery

log = logging.getLogger(__name__)

# Waiting for the last dead letters' acknowledgements once the work is done.
_OUTBOX_FLUSH_SECONDS: Final = 10.0

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


class _ReportDeliveries:
    """The report's side of each delivered event (the metrics record it too, see FanOut)."""

    def __init__(self, report: ReplayReport) -> None:
        self._report = report

    def delivered(self, event: MappedEvent, status: int) -> None:
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
        # Both threads write: the reader's decode failures, the loop's rejected events.
        self._lock = threading.Lock()

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        with self._lock:
            at = position(ticket.topic, ticket.partition, ticket.offset)
            self._report.fail_letter(letter, at)
            if self._outbox is not None:
                self._report.requeued += 1
        if self._outbox is None:
            self._tracker.finish(ticket)
            return
        self._outbox.write(letter, ticket)  # finishes the ticket once acknowledged


class RegistryOutage(SchemaRegistryUnavailable):
    """The Schema Registry is down: the replay stops where it is, to be run again later."""


class Replay:
    """One replay run; :meth:`run` returns the report."""

    def __init__(self, loaded: LoadedBridge, options: ReplayOptions, out: Output) -> None:
        self._loaded = loaded
        self._options = options
        self._out = out
        settings = loaded.settings
        self._settings = LoopSettings.from_delivery(settings.delivery)
        group = options.group_id or options.selection.group_id(settings.kafka.group_id)
        self.report = ReplayReport(group, options.selection.describe(), dry_run=options.dry_run)
        # No commit metadata: replay restarts from its committed position and reads none.
        self._tracker = OffsetTracker(metadata_limit=0)
        self._stop = threading.Event()
        self._limit_reached = False
        self._outbox: DeadLetterOutbox | None = None
        self._work: RecordWork | None = None
        self._client: VibesClient | None = None
        self._dispatcher: Dispatcher | None = None

    def stop(self) -> None:
        """Stop fetching; in-flight work finishes (bounded) and its progress is committed."""
        self._stop.set()

    async def run(self, reader: BoundedReader) -> ReplayReport:
        await call_blocking(partial(reader.start, from_beginning=self._options.from_beginning))
        loop = asyncio.get_running_loop()
        if not self._options.dry_run:
            self._build_delivery()
        try:
            await call_blocking(self._drive, reader, loop)
        finally:
            if self._dispatcher is not None:
                await self._dispatcher.cancel_all()
            if self._client is not None:
                await self._client.aclose()
        return self.report

    def _build_delivery(self) -> None:
        settings = self._loaded.settings
        metrics = BridgeMetrics()
        self._client, _limiter, deliverer = vibes_delivery(self._loaded, metrics.delivery)
        if self._options.requeue:
            producer = DeadLetterProducer(
                producer_config(settings.kafka).settings, settings.dead_letter.topic
            )
            self._outbox = DeadLetterOutbox(producer, self._tracker, metrics, Health())
        sink = _FailureSink(self.report, self._tracker, self._outbox)
        self._work = RecordWork(self._tracker, sink, metrics)
        self._dispatcher = Dispatcher(
            deliverer,
            self._tracker,
            sink,
            FanOut(metrics.delivery, _ReportDeliveries(self.report)),
            max_in_flight=settings.delivery.max_in_flight,
        )

    # ------------------------------------------------------------------ the reader's thread

    def _drive(self, reader: BoundedReader, loop: asyncio.AbstractEventLoop) -> None:
        """The reader thread's body: read to the end offsets (or a stop), then finish."""
        self._read_until_end(reader, loop)
        self._finish(reader)

    def _read_until_end(self, reader: BoundedReader, loop: asyncio.AbstractEventLoop) -> None:
        settings = self._settings
        next_commit = time.monotonic() + settings.commit_interval_seconds
        while not self._stop.is_set() and not self._limit_reached:
            if reader.reached_end():
                return
            if self._tracker.records_in_flight >= settings.max_pending_records:
                self._serve(settings.serve_wait_seconds)
                continue
            batch = reader.fetch(settings.fetch_batch, settings.fetch_timeout_seconds)
            deliveries = self._take(batch)
            if deliveries and self._dispatcher is not None:
                loop.call_soon_threadsafe(self._dispatcher.submit, deliveries)
            self._serve(0)
            if time.monotonic() >= next_commit:
                self._commit(reader)
                next_commit = time.monotonic() + settings.commit_interval_seconds

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
        if self._work is None:  # a dry run
            self._print(prepared, at)
            return []
        # Tracked at the letter's position: progress is committed on the dead-letter topic.
        return self._work.track(prepared, at=item)

    def _prepare(self, letter: ReplayLetter, source: SourceRecord) -> PreparedRecord:
        engine = self._loaded.engine
        try:
            # No age limit applies (max_event_age, a rule's max_age): replaying old
            # records is the operator's decision.
            prepared = prepare(
                source,
                self._loaded.decoders,
                engine,
                max_event_age_seconds=None,
                now_ms=int(time.time() * 1000),
                age_limits=False,
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

    def _pass(self, item: SourceRecord) -> None:
        """A letter with nothing to do still moves the group's position past it."""
        if self._work is not None:
            self._work.pass_over(item)

    # ------------------------------------------------------------------ finishing

    def _serve(self, wait: float) -> None:
        """Serve the dead-letter producer; wait ``wait`` seconds for in-flight room.

        A polling wait, as the run's drain does: the tracker has no wake-up of its own.
        """
        if self._outbox is not None:
            self._outbox.serve(wait)
        elif wait:
            time.sleep(wait)

    def _finish(self, reader: BoundedReader) -> None:
        """Let in-flight work finish (bounded once interrupted), then commit what finished."""
        if self._options.dry_run:
            return
        deadline: float | None = None
        while self._tracker.records_in_flight:
            if self._stop.is_set() and deadline is None:
                deadline = time.monotonic() + self._settings.shutdown_timeout_seconds
            if deadline is not None and time.monotonic() >= deadline:
                break
            self._serve(self._settings.serve_wait_seconds)
        if self._outbox is not None:
            self._outbox.flush(_OUTBOX_FLUSH_SECONDS)
            self._outbox.serve()
        self._commit(reader)
        self.report.interrupted = self._stop.is_set()

    def _commit(self, reader: BoundedReader) -> None:
        if self._work is not None:
            self._work.commit(reader)


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
    reader = await call_blocking(
        BoundedReader, reader_settings, settings.dead_letter.topic, abandoned=BoundedReader.close
    )
    try:
        return await replay.run(reader)
    finally:
        await call_blocking(reader.close)
