"""The dispatcher on a real event loop: per-key order, the slot bound, every outcome, revocation.

The deliverer is a fake whose calls the test opens one by one (an asyncio.Event
per event id), so order and concurrency are observed, never timed. Waiting is a
bounded number of loop turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

from bridge.dead_letters import DeadLetter
from bridge.delivery import Deliverer
from bridge.delivery.outcomes import Delivered
from bridge.errors import DeadLetterReason, EventExpired, EventRejected, ExpiryCode, RecordError
from bridge.mapping.engine import MappedEvent, Priority
from bridge.metrics import BridgeMetrics
from bridge.records import Position, SourceRecord
from bridge.service.dispatch import Delivery, Dispatcher
from bridge.service.offsets import OffsetTracker, Ticket

TOPIC = "shop.orders"


class GatedDeliverer:
    """Each delivery waits for its gate; ``outcomes`` says how an event id ends."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: list[str] = []
        self.running = 0
        self.most_running = 0
        self.outcomes: dict[str, RecordError] = {}

    def open(self, *event_ids: str) -> None:
        for event_id in event_ids:
            self.gates.setdefault(event_id, asyncio.Event()).set()

    async def deliver(self, event: MappedEvent, withdraw: asyncio.Event | None = None) -> Delivered:
        self.started.append(event.event_id)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gates.setdefault(event.event_id, asyncio.Event()).wait()
        finally:
            self.running -= 1
        if event.event_id in self.outcomes:
            raise self.outcomes[event.event_id]
        return Delivered(202, 1)


class Sink:
    """The outbox's stand-in: letters kept; the test acknowledges them."""

    def __init__(self) -> None:
        self.letters: list[tuple[DeadLetter, Ticket]] = []

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        self.letters.append((letter, ticket))


class World:
    def __init__(self, max_in_flight: int = 8) -> None:
        self.tracker = OffsetTracker()
        self.tracker.assign(TOPIC, 0)
        self.tracker.assign(TOPIC, 1)
        self.deliverer = GatedDeliverer()
        self.sink = Sink()
        self.metrics = BridgeMetrics()
        self.dispatcher = Dispatcher(
            cast(Deliverer, self.deliverer),
            self.tracker,
            self.sink,
            self.metrics.delivery,
            max_in_flight=max_in_flight,
        )

    def submit(self, *specs: tuple[int, int, str]) -> list[Delivery]:
        """(partition, offset, key) per record, one event each, id ``p<partition>-<offset>``."""
        deliveries = []
        for partition, offset, key in specs:
            ticket = self.tracker.add(TOPIC, partition, offset, units=1, size=1)
            deliveries.append(Delivery(_event(partition, offset, key), ticket))
        self.dispatcher.submit(deliveries)
        return deliveries


def _event(partition: int, offset: int, key: str, company_key: str = "acme") -> MappedEvent:
    source = SourceRecord(TOPIC, partition, offset, b"{}", key=key.encode())
    event_id = f"p{partition}-{offset}"
    return MappedEvent("rule-a", "order_update", event_id, company_key, b"{}", source)


async def _settle(done: Callable[[], bool]) -> None:
    for _ in range(1000):  # bounded: each turn lets the lanes run
        if done():
            return
        await asyncio.sleep(0)
    raise AssertionError("the dispatcher did not get there")


async def _turns(count: int = 50) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


def _run(body: Callable[[World], Coroutine[Any, Any, None]], world: World | None = None) -> World:
    world = world or World()

    async def main() -> None:
        try:
            await body(world)
        finally:
            await world.dispatcher.cancel_all()

    asyncio.run(main())
    return world


def test_one_keys_events_go_in_order_while_other_keys_go_alongside() -> None:
    async def body(world: World) -> None:
        world.submit((0, 0, "alice"), (0, 1, "alice"), (0, 2, "bob"), (0, 3, "alice"))
        await _settle(lambda: world.deliverer.started == ["p0-0", "p0-2"])
        world.deliverer.open("p0-1", "p0-3")  # later ones ready, but alice's first is not
        await _turns()
        assert world.deliverer.started == ["p0-0", "p0-2"]
        world.deliverer.open("p0-0")
        await _settle(lambda: world.deliverer.started[2:] == ["p0-1", "p0-3"])

    _run(body)


def test_a_waiting_event_of_one_company_holds_back_only_that_company_on_the_same_key() -> None:
    """A paused company's event must not block another company's events of the same record key."""

    async def body(world: World) -> None:
        tracker = world.tracker
        deliveries = [
            Delivery(
                _event(0, offset, "alice", company), tracker.add(TOPIC, 0, offset, units=1, size=1)
            )
            for offset, company in enumerate(["paused", "other", "paused", "other"])
        ]
        world.dispatcher.submit(deliveries)
        await _settle(lambda: world.deliverer.started == ["p0-0", "p0-1"])
        world.deliverer.open("p0-1", "p0-3")  # "other" goes on; "paused" still waits
        await _settle(lambda: world.deliverer.started == ["p0-0", "p0-1", "p0-3"])
        world.deliverer.open("p0-0", "p0-2")
        await _settle(lambda: world.deliverer.started[3:] == ["p0-2"])  # in order, within "paused"

    _run(body)


def test_a_paused_company_filling_its_slots_leaves_another_company_its_own() -> None:
    async def body(world: World) -> None:
        tracker = world.tracker
        deliveries = [
            Delivery(
                _event(0, offset, f"key-{offset}", company),
                tracker.add(TOPIC, 0, offset, units=1, size=1),
            )
            for offset, company in enumerate(["paused", "paused", "paused", "other"])
        ]
        world.dispatcher.submit(deliveries)
        # max_in_flight 2: two of "paused" wait in their slots, "other" has its own
        await _settle(lambda: world.deliverer.started == ["p0-0", "p0-1", "p0-3"])

    _run(body, World(max_in_flight=2))


def test_no_more_than_max_in_flight_deliveries_run_at_once() -> None:
    for limit in (1, 2, 5):

        async def body(world: World, limit: int = limit) -> None:
            world.submit(*((0, offset, f"key-{offset}") for offset in range(12)))
            await _settle(lambda: len(world.deliverer.started) == limit)
            await _turns()
            assert len(world.deliverer.started) == limit
            world.deliverer.open(*(f"p0-{offset}" for offset in range(12)))
            await _settle(lambda: world.tracker.records_in_flight == 0)

        world = _run(body, World(max_in_flight=limit))
        assert world.deliverer.most_running == limit


def test_a_delivered_event_finishes_its_record_and_counts() -> None:
    async def body(world: World) -> None:
        world.submit((0, 0, "a"), (0, 1, "b"))
        world.deliverer.open("p0-1")
        await _settle(lambda: _delivered(world) == 1)
        # p0-1 done, behind p0-0: the position stays, the metadata lists offset 1
        assert world.tracker.positions_to_commit() == {(TOPIC, 0): Position(0, "vb1:0:1+1")}
        world.deliverer.open("p0-0")
        await _settle(lambda: world.tracker.positions_to_commit() == {(TOPIC, 0): Position(2)})
        assert _delivered(world) == 2
        assert world.sink.letters == []

    _run(body)


def _delivered(world: World) -> float:
    value = world.metrics.registry.get_sample_value(
        "vibes_bridge_events_delivered_total",
        {"rule": "rule-a", "event_type": _event(0, 0, "a").metric_event_type, "status": "202"},
    )
    return value or 0.0


def test_a_refused_or_expired_event_becomes_a_letter_that_finishes_on_acknowledgement() -> None:
    errors: list[RecordError] = [
        EventRejected(400, "bad recipient"),
        EventExpired(ExpiryCode.MAX_RETRY_DURATION, "retried too long"),
    ]
    for error in errors:

        async def body(world: World, error: RecordError = error) -> None:
            world.deliverer.outcomes["p0-0"] = error
            world.submit((0, 0, "a"))
            world.deliverer.open("p0-0")
            await _settle(lambda: len(world.sink.letters) == 1)
            assert world.tracker.records_in_flight == 1  # the letter is not acknowledged yet
            letter, ticket = world.sink.letters[0]
            assert letter.reason == error.reason
            assert letter.reason in (DeadLetterReason.REJECTED, DeadLetterReason.EXPIRED)
            world.tracker.finish(ticket)
            assert world.tracker.positions_to_commit() == {(TOPIC, 0): Position(1)}

        _run(body)


def test_forgetting_revoked_partitions_drops_their_work_and_keeps_the_rest() -> None:
    async def body(world: World) -> None:
        world.submit((0, 0, "a"), (0, 1, "a"), (1, 0, "b"), (1, 1, "b"))
        await _settle(lambda: sorted(world.deliverer.started) == ["p0-0", "p1-0"])
        world.dispatcher.forget({(TOPIC, 0)})
        world.tracker.revoke(TOPIC, 0)
        world.deliverer.open("p0-0", "p0-1", "p1-0", "p1-1")
        await _settle(lambda: world.tracker.positions_to_commit() == {(TOPIC, 1): Position(2)})
        await _turns()
        assert "p0-1" not in world.deliverer.started

    _run(body)


def test_a_high_priority_event_takes_the_next_slot_before_a_low_backlog() -> None:
    async def body(world: World) -> None:
        world.submit(*((0, offset, f"low-{offset}") for offset in range(5)))
        await _settle(lambda: world.deliverer.started == ["p0-0"])  # the one slot
        ticket = world.tracker.add(TOPIC, 1, 0, units=1, size=1)
        urgent = _event(1, 0, "urgent")._replace(priority=Priority.HIGH)
        world.dispatcher.submit([Delivery(urgent, ticket)])
        await _turns()
        world.deliverer.open(*(f"p0-{offset}" for offset in range(5)), "p1-0")
        await _settle(lambda: world.tracker.records_in_flight == 0)
        # Queued last, served first once the slot was free; then the backlog in order.
        assert world.deliverer.started == ["p0-0", "p1-0", "p0-1", "p0-2", "p0-3", "p0-4"]

    _run(body, World(max_in_flight=1))
