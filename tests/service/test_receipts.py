"""Delivery receipts without a broker: the format, the outbox's acknowledgement, the dispatcher.

The guarantee under test: with receipts on, an accepted event's unit of work (and
so its record's offset) finishes only when its receipt is acknowledged; a refused
receipt is sent again, never dropped. The broker-backed proof (a SIGKILL in the
middle of transient failures) is tests/service/test_run_receipts.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import orjson
import pytest

from bridge.config.loader import check_settings
from bridge.config.yaml_source import load_yaml
from bridge.dead_letters import SourceCoordinates
from bridge.delivery import Deliverer
from bridge.delivery.outcomes import Delivered
from bridge.kafka.producer import DeadLetterProducer
from bridge.kafka.sizes import record_budget, record_size
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.receipts import (
    VERSION_HEADER,
    NotAReceipt,
    Receipt,
    fit_receipt,
    largest_fixed_receipt,
    read_receipt,
    receipt_record,
)
from bridge.records import Position, SourceRecord
from bridge.service.dispatch import Delivery, Dispatcher
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.outbox import DeadLetterOutbox
from tests.service.loop_fakes import FakeClock, FakeProducer

TOPIC = "shop.orders"
RECEIPTS = "vibes-bridge.receipts"
RETRY = 5.0


def _receipt(event_type: str = "order_shipped") -> Receipt:
    return Receipt(
        event_id="3f2a" * 10,
        company_key="acme",
        event_type=event_type,
        rule="order-shipped",
        status=200,
        attempts=3,
        first_attempt_ms=1_764_000_000_100,
        accepted_ms=1_764_000_001_900,
        source=SourceCoordinates(TOPIC, 2, 41, 1_764_000_000_000),
    )


def test_a_receipt_is_keyed_by_event_id_versioned_and_reads_back_the_same() -> None:
    receipt = _receipt()
    key, value, headers = receipt_record(receipt)
    assert key == receipt.event_id.encode()
    assert headers == [(VERSION_HEADER, b"1")]
    assert orjson.loads(value) == {
        "version": 1,
        "event_id": receipt.event_id,
        "company_key": "acme",
        "event_type": "order_shipped",
        "rule": "order-shipped",
        "status": 200,
        "attempts": 3,
        "first_attempt_ms": 1_764_000_000_100,
        "accepted_ms": 1_764_000_001_900,
        "source": {"topic": TOPIC, "partition": 2, "offset": 41, "timestamp_ms": 1_764_000_000_000},
    }
    assert read_receipt(value) == receipt


def test_a_receipt_too_large_for_its_topic_has_its_event_type_cut_and_says_so() -> None:
    long = _receipt("x" * 5000)
    budget = record_size(*receipt_record(_receipt("x" * 100)))
    fitted = fit_receipt(long, budget)
    assert fitted is not None
    assert record_size(*receipt_record(fitted)) <= budget
    assert fitted.event_type_truncated == 5000
    assert long.event_type.startswith(fitted.event_type)
    assert read_receipt(receipt_record(fitted)[1]) == fitted
    assert fit_receipt(_receipt(), 10**6) == _receipt()  # one that fits is left alone
    assert fit_receipt(long, 50) is None  # not even the fixed part: the start-up check's case


def test_the_start_up_bound_covers_every_receipt_with_an_empty_event_type() -> None:
    bound = largest_fixed_receipt([TOPIC], ["order-shipped"], ["acme"])
    widest = Receipt(
        "\u00e9" * 40,
        "acme",
        "",
        "order-shipped",
        599,
        10**6,
        253_402_300_799_999,
        253_402_300_799_999,
        SourceCoordinates(TOPIC, 2**31 - 1, 2**63 - 1, 253_402_300_799_999),
        event_type_truncated=10**9,
    )
    assert record_size(*receipt_record(widest)) <= bound


@pytest.mark.parametrize(
    "value",
    [b"", b"[]", b'{"version": 2}', b'{"version": 1, "source": {}}', b"\xff"],
)
def test_anything_else_on_the_topic_is_not_a_receipt(value: bytes) -> None:
    with pytest.raises(NotAReceipt):
        read_receipt(value)


class Rig:
    def __init__(self, ack: str | None = "ok", max_record_bytes: int = 1_000_000) -> None:
        self.clock = FakeClock()
        self.producer = FakeProducer(self.clock, ack=ack)
        self.tracker = OffsetTracker(self.clock)
        self.tracker.assign(TOPIC, 0)
        self.metrics = BridgeMetrics()
        self.health = Health(clock=self.clock)
        self.outbox = DeadLetterOutbox(
            cast(DeadLetterProducer, self.producer),
            self.tracker,
            self.metrics,
            self.health,
            retry_seconds=RETRY,
            clock=self.clock,
            max_record_bytes=max_record_bytes,
            receipts_topic=RECEIPTS,
        )

    def ticket(self, offset: int = 0) -> Ticket:
        return self.tracker.add(TOPIC, 0, offset, units=1, size=1)

    def written(self) -> float:
        value = self.metrics.registry.get_sample_value("vibes_bridge_receipts_total")
        return value or 0.0


def test_a_receipt_finishes_its_record_only_when_acknowledged() -> None:
    rig = Rig(ack=None)
    rig.outbox.write_receipt(_receipt(), rig.ticket())
    assert rig.producer.topics == [RECEIPTS]
    rig.outbox.serve()
    assert rig.tracker.records_in_flight == 1
    assert rig.tracker.positions_to_commit() == {}
    rig.producer.ack = "ok"
    rig.outbox.serve()
    assert rig.tracker.positions_to_commit() == {(TOPIC, 0): Position(1)}
    assert rig.written() == 1


def test_a_refused_receipt_is_sent_again_after_the_pause_and_readiness_says_so() -> None:
    rig = Rig(ack="_MSG_TIMED_OUT")
    rig.outbox.write_receipt(_receipt(), rig.ticket())
    rig.outbox.serve()
    assert rig.health.receipts_failing
    assert "receipts cannot be written" in rig.health.readiness_problems()
    assert rig.tracker.records_in_flight == 1
    rig.producer.ack = "ok"
    rig.clock.advance(RETRY)
    rig.outbox.serve()  # resent now
    rig.outbox.serve()  # and acknowledged
    assert len(rig.producer.sent) == 2
    assert rig.tracker.records_in_flight == 0
    assert not rig.health.receipts_failing


def test_a_receipt_is_cut_to_the_topics_budget_before_it_is_sent() -> None:
    rig = Rig(max_record_bytes=2000)
    rig.outbox.write_receipt(_receipt("x" * 5000), rig.ticket())
    key, value, headers = rig.producer.sent[0]
    assert record_size(key, value, headers) <= record_budget(2000)
    assert orjson.loads(value or b"")["event_type_truncated"] == 5000


class Accepting:
    async def deliver(self, event: MappedEvent, withdraw: asyncio.Event | None = None) -> Delivered:
        return Delivered(200, 2, 1_000, 2_000)


class Receipts:
    def __init__(self) -> None:
        self.written: list[tuple[Receipt, Ticket]] = []

    def write_receipt(self, receipt: Receipt, ticket: Ticket) -> None:
        self.written.append((receipt, ticket))


def test_with_receipts_on_an_accepted_event_waits_for_its_receipt() -> None:
    tracker = OffsetTracker()
    tracker.assign(TOPIC, 0)
    receipts = Receipts()
    metrics = BridgeMetrics()

    async def main() -> None:
        dispatcher = Dispatcher(
            cast(Deliverer, Accepting()),
            tracker,
            cast(DeadLetterOutbox, None),
            metrics.delivery,
            max_in_flight=4,
            receipts=receipts,
        )
        source = SourceRecord(TOPIC, 0, 7, b"{}", key=b"k", timestamp_ms=500)
        event = MappedEvent("rule-a", "order_update", "e-7", "acme", b"{}", source)
        ticket = tracker.add(TOPIC, 0, 7, units=1, size=1)
        dispatcher.submit([Delivery(event, ticket)])
        for _ in range(100):
            if receipts.written:
                break
            await asyncio.sleep(0)
        await dispatcher.cancel_all()

    asyncio.run(main())
    [(receipt, ticket)] = receipts.written
    assert tracker.records_in_flight == 1  # accepted, but not finished until the receipt is
    assert receipt == Receipt(
        "e-7",
        "acme",
        "order_update",
        "rule-a",
        200,
        2,
        1_000,
        2_000,
        SourceCoordinates(TOPIC, 0, 7, 500),
    )
    tracker.finish(ticket)
    assert tracker.positions_to_commit() == {(TOPIC, 0): Position(8)}


@pytest.mark.parametrize(
    ("extra", "source", "named"),
    [
        ("dead_letter:\n  topic: same\n", "shop.orders", "dead_letter.topic"),
        ("", "same", "a source's topic"),
    ],
)
def test_a_receipts_topic_that_is_another_topic_of_the_bridge_is_refused(
    tmp_path: Path, extra: str, source: str, named: str
) -> None:
    text = (
        "version: 1\nvibes: {company_key: acme, username: u, password: p}\n"
        f"sources:\n  - topic: {source}\n    format: json\n"
        f"rules:\n  - name: r\n    topic: {source}\n    event_type: t\n"
        "    recipient: {external_person_id: id}\n"
        f"receipts:\n  topic: same\n{extra}"
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    settings, problems = check_settings(load_yaml(path))
    assert settings is not None
    assert [problem.message for problem in problems] == [
        f"receipts.topic: same is also {named}; receipts need a topic of their own"
    ]
