"""Parking (docs/isolation.md): the parked format, the parking decision and the order rule.

Pure: no broker, no sockets; the policy runs on a fake clock. The real broker and
simulator run in tests/service/test_run_isolation.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from bridge.config.loader import check_settings
from bridge.config.yaml_source import load_yaml
from bridge.delivery import Withdrawn
from bridge.delivery.companies import CompanyState
from bridge.delivery.outcomes import Delivered
from bridge.kafka.sizes import record_size
from bridge.mapping.engine import MappedEvent, Priority
from bridge.parking import VERSION_HEADER, NotParked, parked_record, read_parked
from bridge.records import SourceRecord
from bridge.service.dispatch import Delivery, Dispatcher, Parking
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.parking import ParkingPolicy, prepare_parked

BUDGET = 1_000_000


def event(
    company_key: str = "acme", key: bytes | None = b"customer-1", offset: int = 7
) -> MappedEvent:
    return MappedEvent(
        rule="order_created",
        event_type="order_created",
        event_id=f"id-{offset}",
        company_key=company_key,
        body=b'{"event_type":"order_created","event_data":{"name":"\xc3\xa9"}}',
        source=SourceRecord("shop.orders", 2, offset, None, key, 1_700_000_000_000),
        metric_event_type="order_created",
        max_age_seconds=300.0,
        priority=Priority.HIGH,
    )


# ------------------------------------------------------------------ the format


@pytest.mark.parametrize("key", [b"customer-1", None, b"\x00\xff"])
def test_a_parked_record_reads_back_as_the_event_it_was(key: bytes | None) -> None:
    original = event(key=key)
    record = parked_record(original, BUDGET)
    assert record is not None
    record_key, value, headers = record
    assert record_key == key  # keyed by the source key: one customer, one partition, in order
    assert headers == [(VERSION_HEADER, b"1")]
    assert read_parked(value) == original


def test_an_event_too_large_for_the_topic_is_not_parked() -> None:
    original = event()
    record = parked_record(original, BUDGET)
    assert record is not None
    size = record_size(*record)
    assert parked_record(original, size) is not None
    assert parked_record(original, size - 1) is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"version": 2}', "version 1"),
        (b'{"version": 1}', "source is missing"),
    ],
)
def test_a_record_the_bridge_did_not_park_is_refused(value: bytes, says: str) -> None:
    with pytest.raises(NotParked, match=says):
        read_parked(value)


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("priority", "urgent"),
        ("max_age_seconds", -1),
        ("event_id", "x" * 41),
        ("body", 5),
        ("company_key", None),
    ],
)
def test_a_parked_record_with_a_bad_field_is_refused_without_quoting_it(
    field: str, bad: object
) -> None:
    record = parked_record(event(), BUDGET)
    assert record is not None
    document = orjson.loads(record[1])
    document[field] = bad
    with pytest.raises(NotParked, match=field) as raised:
        read_parked(orjson.dumps(document))
    assert "x" * 41 not in str(raised.value)


def test_a_bad_source_key_or_coordinate_is_refused() -> None:
    record = parked_record(event(), BUDGET)
    assert record is not None
    for name, bad in (("key", "not base64!"), ("offset", -1), ("topic", "bad topic")):
        document = orjson.loads(record[1])
        document["source"][name] = bad
        with pytest.raises(NotParked):
            read_parked(orjson.dumps(document))


def test_a_malformed_parked_record_becomes_a_dead_letter_not_a_crash() -> None:
    record = SourceRecord("vibes-bridge.parked", 0, 3, b"garbage", b"k")
    prepared = prepare_parked(record)
    assert prepared.events == ()
    assert len(prepared.dead_letters) == 1
    parked = parked_record(event(), BUDGET)
    assert parked is not None
    good = prepare_parked(SourceRecord("vibes-bridge.parked", 0, 4, parked[1], parked[0]))
    assert good.events == (event(),)


# ------------------------------------------------------------------ the decision


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_company_parks_after_being_paused_for_after_seconds() -> None:
    clock = Clock()
    policy = ParkingPolicy(after_seconds=30, waiting_limit=1000, clock=clock)
    policy.arrived("acme")
    assert not policy.observe("acme", paused=True)
    clock.now += 29.9
    assert not policy.observe("acme", paused=True)
    assert not policy.must_park(("acme", b"k"))
    clock.now += 0.1
    assert policy.observe("acme", paused=True)
    assert policy.must_park(("acme", b"k"))
    assert not policy.must_park(("demo", b"k"))  # only the paused company
    assert not policy.observe("acme", paused=False)  # recovered: live events go again
    assert not policy.must_park(("acme", b"k"))


def test_a_company_parks_once_its_waiting_events_reach_the_limit() -> None:
    policy = ParkingPolicy(after_seconds=30, waiting_limit=3, clock=Clock())
    for _ in range(2):
        policy.arrived("acme")
    assert not policy.observe("acme", paused=True)
    policy.arrived("acme")
    assert policy.observe("acme", paused=True)


def test_a_healthy_company_never_parks_however_much_waits() -> None:
    policy = ParkingPolicy(after_seconds=0.001, waiting_limit=1, clock=Clock())
    for _ in range(10):
        policy.arrived("acme")
    assert not policy.observe("acme", paused=False)


def test_without_the_parked_topic_nothing_parks() -> None:
    policy = ParkingPolicy(after_seconds=0.001, waiting_limit=1, clock=Clock())
    policy.available = False
    policy.arrived("acme")
    assert not policy.observe("acme", paused=True)
    assert not policy.must_park(("acme", b"k"))


def test_a_pair_with_parked_events_parks_behind_them_until_they_are_delivered() -> None:
    policy = ParkingPolicy(after_seconds=30, waiting_limit=1, clock=Clock())
    policy.arrived("acme")
    assert policy.observe("acme", paused=True)
    policy.parked(("acme", b"k1"))
    policy.parked(("acme", b"k1"))
    assert not policy.observe("acme", paused=False)  # recovered
    assert policy.must_park(("acme", b"k1"))  # still behind its parked events
    assert not policy.must_park(("acme", b"k2"))  # nothing parked for this customer
    assert policy.pending() == {"acme": 2}
    policy.replayed(("acme", b"k1"))
    assert policy.must_park(("acme", b"k1"))
    policy.replayed(("acme", b"k1"))
    assert not policy.must_park(("acme", b"k1"))
    assert policy.pending() == {"acme": 0}  # the gauge goes back to 0


# ------------------------------------------------------------------ the dispatcher


class PausedDeliverer:
    """A deliverer whose company ``acme`` is paused: its events wait until withdrawn."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.woken: list[str] = []

    def company_state(self, company_key: str) -> CompanyState:
        return CompanyState.CREDENTIALS_REJECTED if company_key == "acme" else CompanyState.HEALTHY

    def wake(self, company_key: str) -> None:
        self.woken.append(company_key)

    async def deliver(self, event: MappedEvent, withdraw: asyncio.Event | None = None) -> Delivered:
        if event.company_key == "acme":
            assert withdraw is not None
            await withdraw.wait()
            raise Withdrawn
        self.delivered.append(event.event_id)
        return Delivered(202, 1, None, None)


class Sink:
    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker
        self.parked: list[str] = []

    def park(self, event: MappedEvent, ticket: Ticket) -> bool:
        self.parked.append(event.event_id)
        self.tracker.finish(ticket)  # as the broker's acknowledgement would
        return True

    def write(self, letter: object, ticket: Ticket) -> None:
        raise AssertionError("nothing is dead-lettered")


class Outcomes:
    def delivered(self, event: MappedEvent, status: int) -> None:
        return None


def test_a_paused_company_past_the_limit_is_parked_in_order_and_its_records_finish() -> None:
    async def scenario() -> tuple[list[str], list[str], int]:
        tracker = OffsetTracker()
        tracker.assign("shop.orders", 2)
        sink = Sink(tracker)
        deliverer = PausedDeliverer()
        policy = ParkingPolicy(after_seconds=60, waiting_limit=3, clock=Clock())
        dispatcher = Dispatcher(
            deliverer,  # type: ignore[arg-type]
            tracker,
            sink,
            Outcomes(),
            max_in_flight=8,
            parking=Parking(policy, sink, "vibes-bridge.parked"),
        )
        deliveries = []
        for offset in range(6):
            company = "acme" if offset % 2 == 0 else "demo"
            mapped = event(company, offset=offset)
            ticket = tracker.add("shop.orders", 2, offset, units=1, size=1)
            deliveries.append(Delivery(mapped, ticket))
        dispatcher.submit(deliveries[:4])  # two of acme's: below the limit, they wait
        await asyncio.sleep(0)
        assert sink.parked == []
        dispatcher.submit(deliveries[4:])  # the third: acme parks
        for _ in range(20):
            await asyncio.sleep(0)
        await dispatcher.cancel_all()
        return sink.parked, deliverer.delivered, tracker.records_in_flight

    parked, delivered, unfinished = asyncio.run(scenario())
    assert parked == ["id-0", "id-2", "id-4"]  # one customer's events, in record order
    assert delivered == ["id-1", "id-3", "id-5"]
    assert unfinished == 0  # every record finished: the partition commits past acme's


def test_work_dropped_with_revoked_partitions_no_longer_counts_as_waiting() -> None:
    """Otherwise a company's waiting count only grows across rebalances, and it parks early."""

    async def scenario() -> list[str]:
        tracker = OffsetTracker()
        tracker.assign("shop.orders", 2)
        sink = Sink(tracker)
        policy = ParkingPolicy(after_seconds=60, waiting_limit=4, clock=Clock())
        dispatcher = Dispatcher(
            PausedDeliverer(),  # type: ignore[arg-type]
            tracker,
            sink,
            Outcomes(),
            max_in_flight=8,
            parking=Parking(policy, sink, "vibes-bridge.parked"),
        )

        def delivery(offset: int) -> Delivery:
            ticket = tracker.add("shop.orders", 2, offset, units=1, size=1)
            return Delivery(event("acme", offset=offset), ticket)

        dispatcher.submit([delivery(0), delivery(1), delivery(2)])  # one waits, two queued
        await asyncio.sleep(0)
        dispatcher.forget({("shop.orders", 2)})
        await asyncio.sleep(0)
        tracker.assign("shop.orders", 2)
        dispatcher.submit([delivery(3), delivery(4)])  # two waiting now: below the limit
        for _ in range(5):
            await asyncio.sleep(0)
        await dispatcher.cancel_all()
        return sink.parked

    assert asyncio.run(scenario()) == []


# ------------------------------------------------------------------ validate


def test_a_parking_topic_that_is_another_topic_of_the_bridge_is_refused(tmp_path: Path) -> None:
    text = (
        "version: 1\nvibes: {company_key: acme, username: u, password: p}\n"
        "sources:\n  - topic: shop.orders\n    format: json\n"
        "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        "    recipient: {external_person_id: id}\n"
        "delivery:\n  parking: {topic: shop.orders}\n"
    )
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    settings, problems = check_settings(load_yaml(path))
    assert settings is not None
    assert [problem.message for problem in problems] == [
        "delivery.parking.topic: shop.orders is also a source's topic; "
        "parked events need a topic of their own"
    ]
