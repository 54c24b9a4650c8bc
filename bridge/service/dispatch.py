"""The delivery side of the pipeline, on the asyncio loop: events out, outcomes back.

Prepared events arrive from the consumer thread; each goes through its key's
lane (per-key order), takes one of ``max_in_flight`` slots, and is delivered by
the :class:`~bridge.delivery.Deliverer` (rate budget, retries, credentials).
The outcome finishes a unit of the record's work in the offset tracker, or,
for an event that can never succeed, becomes a dead letter whose broker
acknowledgement finishes it. Every delivery task ends its ticket: an exception
the deliverer did not classify (a bug) is logged once per kind and place and the
event dead-lettered as ``delivery_error`` (``bridge.errors.DeliveryFailed`` says why).
"""

from __future__ import annotations

import logging
import traceback
from typing import NamedTuple, Protocol

from bridge.dead_letters import DeadLetter, dead_letter
from bridge.delivery import Deliverer
from bridge.errors import DeliveryFailed, EventExpired, EventRejected, RecordError
from bridge.mapping.engine import MappedEvent
from bridge.records import Partition
from bridge.service.lanes import KeyLanes
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.slots import PrioritySlots

log = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    """Where dead letters go; ``ticket`` is finished once the broker acknowledged the letter."""

    def write(self, letter: DeadLetter, ticket: Ticket) -> None: ...


class DeliveredObserver(Protocol):
    """Who hears of each event Vibes has: the metrics' delivery recorder, and replay's report."""

    def delivered(self, event: MappedEvent, status: int) -> None: ...


class FanOut:
    """One observer that tells several, in order: replay's report counts what the run's
    metrics record, without either knowing of the other (nor a subclass of the metrics)."""

    def __init__(self, *observers: DeliveredObserver) -> None:
        self._observers = observers

    def delivered(self, event: MappedEvent, status: int) -> None:
        for observer in self._observers:
            observer.delivered(event, status)


class Delivery(NamedTuple):
    """One event to deliver, and the record's ticket it finishes."""

    event: MappedEvent
    ticket: Ticket


class Dispatcher:
    """Delivers events with per-key order and bounded concurrency; reports every outcome."""

    def __init__(
        self,
        deliverer: Deliverer,
        tracker: OffsetTracker,
        dead_letters: DeadLetterSink,
        outcomes: DeliveredObserver,
        *,
        max_in_flight: int,
    ) -> None:
        self._deliverer = deliverer
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._outcomes = outcomes
        # By the rules' priorities: high events take the next free slot (bridge/service/slots.py).
        self._slots = PrioritySlots(max_in_flight)
        self._lanes: KeyLanes[Delivery] = KeyLanes(self._deliver)
        self._unexpected_seen: set[tuple[str, str]] = set()

    def submit(self, deliveries: list[Delivery]) -> None:
        """Queue events (called through ``loop.call_soon_threadsafe`` by the consumer thread)."""
        for delivery in deliveries:
            self._lanes.push(delivery.event.source.key, delivery)

    def forget(self, partitions: set[Partition]) -> None:
        """Stop work for revoked partitions: their new owner delivers it again."""
        dropped = self._lanes.drop(
            lambda delivery: (delivery.ticket.topic, delivery.ticket.partition) in partitions
        )
        if dropped:
            log.info("dropped work of revoked partitions", extra={"events": dropped})

    async def cancel_all(self) -> None:
        await self._lanes.cancel_all()

    async def _deliver(self, delivery: Delivery) -> None:
        event, ticket = delivery
        async with self._slots.slot(event.priority):
            try:
                delivered = await self._deliverer.deliver(event)
            except (EventRejected, EventExpired) as error:
                self._dead_letter(delivery, error)
                return
            except Exception as error:  # a bug must not leave the ticket unfinished
                self._report_unexpected(event, error)
                self._dead_letter(delivery, DeliveryFailed(type(error).__name__))
                return
        self._tracker.finish(ticket)  # first: a failure recording metrics must not hold it
        self._outcomes.delivered(event, delivered.status)

    def _dead_letter(self, delivery: Delivery, error: RecordError) -> None:
        event, ticket = delivery
        letter = dead_letter(event.source, error, rule=event.rule, attempts=error.attempts)
        self._dead_letters.write(letter, ticket)

    def _report_unexpected(self, event: MappedEvent, error: Exception) -> None:
        """Log an unclassified exception once per kind and place: its class and where it was
        raised, never its message or the traceback's text (either may hold the event's values)."""
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "unknown"
        kind = type(error).__name__
        if (kind, where) in self._unexpected_seen:
            return
        self._unexpected_seen.add((kind, where))
        log.error(
            "unexpected exception delivering an event; it is dead-lettered as delivery_error",
            extra={"exception": kind, "where": where, "rule": event.rule},
        )
