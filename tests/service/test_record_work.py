"""RecordWork: one unit per event and letter, letters to the sink, commits only of finished work."""

from __future__ import annotations

from bridge.dead_letters import DeadLetter, dead_letter
from bridge.errors import DecodeCode, DecodeError
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.record_work import RecordWork
from bridge.service.stages import PreparedRecord
from tests.service.loop_fakes import FakeSource, record

TOPIC = "shop.orders"
P0 = (TOPIC, 0)


class HoldingSink:
    """Keeps letters unacknowledged until the test finishes them."""

    def __init__(self) -> None:
        self.letters: list[tuple[DeadLetter, Ticket]] = []

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        self.letters.append((letter, ticket))


def _prepared(offset: int, events: int, letters: int) -> PreparedRecord:
    source = record(TOPIC, 0, offset)
    made = tuple(
        MappedEvent(f"rule-{n}", "order_update", f"id-{n}", "acme", b"{}", source)
        for n in range(events)
    )
    error = DecodeError(DecodeCode.INVALID_JSON, "not JSON")
    dead = tuple(dead_letter(source, error) for _ in range(letters))
    return PreparedRecord(source, made, dead, True)


def _work() -> tuple[RecordWork, OffsetTracker, HoldingSink]:
    tracker = OffsetTracker()
    tracker.assign(TOPIC, 0)
    sink = HoldingSink()
    return RecordWork(tracker, sink, BridgeMetrics()), tracker, sink


def test_a_record_is_finished_only_when_every_event_and_letter_is() -> None:
    for events, letters in [(1, 0), (2, 1), (0, 2), (3, 3)]:
        work, tracker, sink = _work()
        deliveries = work.track(_prepared(0, events, letters))
        assert len(deliveries) == events
        assert len(sink.letters) == letters
        units = [delivery.ticket for delivery in deliveries] + [t for _l, t in sink.letters]
        for ticket in units[:-1]:
            tracker.finish(ticket)
            assert tracker.records_in_flight == 1
        tracker.finish(units[-1])
        assert tracker.records_in_flight == 0


def test_a_record_with_no_work_is_finished_when_tracked() -> None:
    work, _tracker, _sink = _work()
    work.track(PreparedRecord(record(TOPIC, 0, 0), (), (), False))
    work.pass_over(record(TOPIC, 0, 1))
    source = FakeSource([P0])
    assert work.commit(source) == {P0: 2}
    assert source.commits == [{P0: 2}]


def test_work_can_hold_back_another_records_offset() -> None:
    """Replay: the source record is prepared, the dead letter's offset is what commits."""
    tracker = OffsetTracker()
    sink = HoldingSink()
    work = RecordWork(tracker, sink, BridgeMetrics())
    letter = record("dead.letters", 3, 40)
    work.track(_prepared(7, 0, 1), at=letter)
    assert tracker.pending_in([("dead.letters", 3)]) == 1
    assert tracker.pending_in([P0]) == 0
    tracker.finish(sink.letters[0][1])
    source = FakeSource([])
    assert work.commit(source) == {("dead.letters", 3): 1}  # offsets moved
    assert source.commits == [{("dead.letters", 3): 41}]


def test_nothing_unfinished_is_committed_and_a_refusal_is_tried_again() -> None:
    work, tracker, _sink = _work()
    first = work.track(_prepared(0, 1, 0))[0]
    work.track(_prepared(1, 1, 0))
    source = FakeSource([P0])
    assert work.commit(source) == {}
    tracker.finish(first.ticket)
    source.accept_commits = False
    assert work.commit(source) == {}
    source.accept_commits = True
    assert work.commit(source) == {P0: 1}
    assert source.commits == [{P0: 1}]
    assert work.commit(source) == {}  # handed out once
