"""A delivery task that ends in an exception nobody classified still ends its ticket.

The dispatcher runs on a real event loop with a real offset tracker; the deliverer
is a fake that raises (a bug's stand-in), the dead-letter sink finishes the ticket
as the broker's acknowledgement would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import pytest

from bridge.dead_letters import CODE_HEADER, MESSAGE_HEADER, REASON_HEADER, DeadLetter
from bridge.delivery import Deliverer
from bridge.delivery.outcomes import Delivered
from bridge.errors import DeadLetterReason
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.records import Position, SourceRecord
from bridge.service.dispatch import Delivery, Dispatcher
from bridge.service.offsets import OffsetTracker, Ticket

TOPIC = "orders"
PHONE = "+15551234567"  # person data that must not leak from the exception's message


class RaisingDeliverer:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.calls = 0

    async def deliver(self, event: MappedEvent, withdraw: asyncio.Event | None = None) -> Delivered:
        self.calls += 1
        raise self.error


class AcknowledgingSink:
    """Stands in for the outbox: the broker acknowledges every letter at once."""

    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker
        self.letters: list[DeadLetter] = []

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        self.letters.append(letter)
        self.tracker.finish(ticket)


def event(offset: int) -> MappedEvent:
    source = SourceRecord(TOPIC, 0, offset, b"{}", key=f"customer-{offset}".encode())
    return MappedEvent("rule-a", "order_update", f"id-{offset}", "demo", b"{}", source)


def run(error: BaseException, count: int) -> tuple[AcknowledgingSink, OffsetTracker]:
    tracker = OffsetTracker()
    tracker.assign(TOPIC, 0)
    sink = AcknowledgingSink(tracker)

    async def main() -> None:
        dispatcher = Dispatcher(
            cast(Deliverer, RaisingDeliverer(error)),
            tracker,
            sink,
            BridgeMetrics().delivery,
            max_in_flight=4,
        )
        deliveries = [
            Delivery(event(offset), tracker.add(TOPIC, 0, offset, units=1, size=2))
            for offset in range(count)
        ]
        dispatcher.submit(deliveries)
        for _ in range(1000):  # bounded: each turn lets the lanes run
            if tracker.records_in_flight == 0:
                break
            await asyncio.sleep(0)
        await dispatcher.cancel_all()

    asyncio.run(main())
    return sink, tracker


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"bug with {PHONE}"),
        KeyError(PHONE),
        ValueError(f"cannot parse {PHONE}"),
        ZeroDivisionError("division by zero"),
    ],
)
def test_an_unexpected_exception_dead_letters_the_event_and_finishes_the_ticket(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="bridge.service.dispatch"):
        sink, tracker = run(error, count=5)
    assert tracker.records_in_flight == 0
    assert tracker.positions_to_commit() == {(TOPIC, 0): Position(5)}  # the partition moves on
    assert len(sink.letters) == 5
    for letter in sink.letters:
        headers = dict(letter.headers)
        assert letter.reason == DeadLetterReason.DELIVERY_ERROR
        assert headers[REASON_HEADER] == b"delivery_error"
        assert headers[CODE_HEADER] == type(error).__name__.encode()
        assert PHONE.encode() not in (headers[MESSAGE_HEADER] or b"")
    # Logged once for the five events, naming the kind, never the message.
    assert len(caplog.records) == 1
    assert type(error).__name__ in caplog.text or caplog.records[0].__dict__["exception"]
    assert PHONE not in caplog.text
    assert all(PHONE not in str(value) for value in caplog.records[0].__dict__.values())


def test_cancellation_is_not_a_delivery_error() -> None:
    sink, tracker = run(asyncio.CancelledError(), count=2)
    assert sink.letters == []  # cancelled work is redone by the partition's owner
    assert tracker.records_in_flight == 2
