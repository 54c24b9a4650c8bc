"""The delivery side of the pipeline, on the asyncio loop: events out, outcomes back.

Prepared events arrive from the consumer thread; each goes through its lane
(one per company key and record key: per-key order within a company, while a
paused company never holds back another company's events of the same record
key), takes one of ``max_in_flight`` slots, and is delivered by
the :class:`~bridge.delivery.Deliverer` (rate budget, retries, credentials).
The outcome finishes a unit of the record's work in the offset tracker, or,
for an event that can never succeed, becomes a dead letter whose broker
acknowledgement finishes it. With receipts on, an accepted event's unit is
finished by its receipt's acknowledgement instead (docs/receipts.md). Every
delivery task ends its ticket: an exception the deliverer did not classify (a
bug) is logged once per kind and place and the event dead-lettered as
``delivery_error`` (``bridge.errors.DeliveryFailed`` says why).

Parking (docs/isolation.md): with a :class:`Parking` given, a company key that
stays paused parks. Its waiting events are withdrawn from the deliverer and
written to the parked topic (their units finish on the broker's
acknowledgement, so the source partitions commit past them), and so is every
later event of a (company key, record key) pair with parked events before it.
The parking consumer's events (tickets on the parked topic) come back through
the same lanes and are never parked again: they wait for their company.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from bridge.dead_letters import DeadLetter, SourceCoordinates, dead_letter
from bridge.delivery import Deliverer, Withdrawn
from bridge.delivery.companies import CompanyState
from bridge.delivery.outcomes import Delivered
from bridge.errors import DeliveryFailed, EventExpired, EventRejected, RecordError
from bridge.mapping.engine import MappedEvent
from bridge.receipts import Receipt
from bridge.records import Partition
from bridge.service.lanes import KeyLanes
from bridge.service.offsets import Finisher, Ticket
from bridge.service.parking import Pair, ParkingPolicy
from bridge.service.slots import PrioritySlots

log = logging.getLogger(__name__)


class DeadLetterSink(Protocol):
    """Where dead letters go; ``ticket`` is finished once the broker acknowledged the letter."""

    def write(self, letter: DeadLetter, ticket: Ticket) -> None: ...


class ReceiptSink(Protocol):
    """Where receipts go; ``ticket`` is finished once the broker acknowledged the receipt."""

    def write_receipt(self, receipt: Receipt, ticket: Ticket) -> None: ...


class ParkedSink(Protocol):
    """Where parked events go; ``ticket`` is finished once the broker acknowledged the event.
    False: the event does not fit the parked topic and was not sent."""

    def park(self, event: MappedEvent, ticket: Ticket) -> bool: ...


@dataclass(frozen=True, slots=True)
class Parking:
    """What the dispatcher parks with: the policy, the sink and the parked topic."""

    policy: ParkingPolicy
    sink: ParkedSink
    topic: str


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
    """Delivers events with per-key order and bounded concurrency per company key; reports every
    outcome."""

    def __init__(
        self,
        deliverer: Deliverer,
        tracker: Finisher,
        dead_letters: DeadLetterSink,
        outcomes: DeliveredObserver,
        *,
        max_in_flight: int,
        receipts: ReceiptSink | None = None,
        parking: Parking | None = None,
    ) -> None:
        self._deliverer = deliverer
        self._receipts = receipts
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._outcomes = outcomes
        # Slots per company key, each handed out by the rules' priorities (high events
        # take the next free slot: bridge/service/slots.py): a paused company's
        # deliveries, waiting behind its gate, its rate limit or a backoff, never take
        # another company's places. The deliverer bounds the requests actually open to
        # max_in_flight as well.
        self._max_in_flight = max_in_flight
        self._slots: dict[str, PrioritySlots] = {}
        self._lanes: KeyLanes[Delivery] = KeyLanes(self._deliver)
        self._unexpected_seen: set[tuple[str, str]] = set()
        self._parking = parking
        self._withdraw: dict[str, asyncio.Event] = {}  # set while the company key parks
        self._started: set[int] = set()  # deliveries under way (ids): they account for themselves

    def submit(self, deliveries: list[Delivery]) -> None:
        """Queue events (called through ``loop.call_soon_threadsafe`` by the consumer thread)."""
        for delivery in deliveries:
            event = delivery.event
            key = event.source.key
            lane: tuple[str, bytes] | tuple[str, bytes, str] | None = (
                None if key is None else (event.company_key, key)
            )
            if self._replayed(delivery):
                # Parked events have lanes of their own: behind one waiting for its
                # company, a live event of the pair must still reach its parking decision
                # (it parks behind it: the order rule keeps the pair's order).
                lane = None if key is None else (event.company_key, key, "parked")
            elif self._parking is not None:
                self._parking.policy.arrived(event.company_key)
            # Order is kept per company: texts to two accounts are unrelated.
            self._lanes.push(lane, delivery)
        self.review()

    def review(self) -> None:
        """Start parking for the company keys that are to park now, and stop it for those
        that recovered (``submit`` and the service's heartbeat call it)."""
        if self._parking is None:
            return
        policy = self._parking.policy
        for company_key in policy.companies():
            paused = self._deliverer.company_state(company_key) is not CompanyState.HEALTHY
            signal = self._withdraw.get(company_key)
            if policy.observe(company_key, paused):
                if signal is None or not signal.is_set():
                    self._withdraw.setdefault(company_key, asyncio.Event()).set()
                    self._deliverer.wake(company_key)
                    log.warning(
                        "company key %s stays paused: its waiting events are parked on %s",
                        company_key,
                        self._parking.topic,
                    )
            elif signal is not None and signal.is_set():
                del self._withdraw[company_key]  # later events get a fresh, unset one

    def parked_pending(self) -> dict[str, int]:
        """Events parked by this process and not delivered yet, per company key."""
        return {} if self._parking is None else self._parking.policy.pending()

    def _replayed(self, delivery: Delivery) -> bool:
        return self._parking is not None and delivery.ticket.topic == self._parking.topic

    def forget(self, partitions: set[Partition]) -> None:
        """Stop work for revoked partitions: their new owner delivers it again."""
        unwanted: list[Delivery] = []

        def revoked(delivery: Delivery) -> bool:
            if (delivery.ticket.topic, delivery.ticket.partition) not in partitions:
                return False
            unwanted.append(delivery)
            return True

        dropped = self._lanes.drop(revoked)
        for delivery in unwanted:
            if id(delivery) not in self._started:  # a running one accounts for itself
                self._account(delivery)
        if dropped:
            log.info("dropped work of revoked partitions", extra={"events": dropped})

    async def cancel_all(self) -> None:
        await self._lanes.cancel_all()

    async def _deliver(self, delivery: Delivery) -> None:
        parking = self._parking
        if parking is None:
            await self._send(delivery, None)
            return
        event = delivery.event
        pair: Pair = (event.company_key, event.source.key)
        self._started.add(id(delivery))
        try:
            if self._replayed(delivery):
                await self._send(delivery, None)  # a parked event: it waits for its company
                return
            if parking.policy.must_park(pair) and self._park(parking, delivery, pair):
                return
            try:
                await self._send(
                    delivery, self._withdraw.setdefault(event.company_key, asyncio.Event())
                )
            except Withdrawn:
                if not self._park(parking, delivery, pair):
                    await self._send(delivery, None)  # too large to park: it waits, as before
        finally:
            self._started.discard(id(delivery))
            self._account(delivery)

    def _account(self, delivery: Delivery) -> None:
        """A delivery is over (done, parked, or dropped with its partition): the policy's
        counts of waiting live events and of parked, undelivered ones follow."""
        if self._parking is None:
            return
        event = delivery.event
        if self._replayed(delivery):
            self._parking.policy.replayed((event.company_key, event.source.key))
        else:
            self._parking.policy.left(event.company_key)

    def _park(self, parking: Parking, delivery: Delivery, pair: Pair) -> bool:
        if not parking.sink.park(delivery.event, delivery.ticket):
            return False
        parking.policy.parked(pair)
        return True

    async def _send(self, delivery: Delivery, withdraw: asyncio.Event | None) -> None:
        event, ticket = delivery
        slots = self._slots.get(event.company_key)
        if slots is None:
            slots = self._slots[event.company_key] = PrioritySlots(self._max_in_flight)
        async with slots.slot(event.priority):
            try:
                delivered = await self._deliverer.deliver(event, withdraw)
            except Withdrawn:
                raise
            except (EventRejected, EventExpired) as error:
                self._dead_letter(delivery, error)
                return
            except Exception as error:  # a bug must not leave the ticket unfinished
                self._report_unexpected(event, error)
                self._dead_letter(delivery, DeliveryFailed(type(error).__name__))
                return
        # First: a failure recording metrics must not hold the ticket.
        if self._receipts is None:
            self._tracker.finish(ticket)
        else:
            self._receipts.write_receipt(receipt_of(event, delivered), ticket)
        self._outcomes.delivered(event, delivered.status)

    def _dead_letter(self, delivery: Delivery, error: RecordError) -> None:
        event, ticket = delivery
        letter = dead_letter(
            event.source, error, rule=event.rule, attempts=error.attempts, event_id=event.event_id
        )
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


def receipt_of(event: MappedEvent, delivered: Delivered) -> Receipt:
    """The receipt of ``event``, which Vibes accepted as ``delivered`` says."""
    source = event.source
    return Receipt(
        event_id=event.event_id,
        company_key=event.company_key,
        event_type=event.event_type,
        rule=event.rule,
        status=delivered.status,
        attempts=delivered.attempts,
        first_attempt_ms=delivered.first_attempt_ms,
        accepted_ms=delivered.accepted_ms,
        source=SourceCoordinates(
            source.topic, source.partition, source.offset, source.timestamp_ms
        ),
    )
