"""The offset tracker: commit only up to the first unfinished record, never past it."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from bridge.service.offsets import OffsetTracker

T = "orders"


def test_position_waits_for_the_first_unfinished_record() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tickets = [tracker.add(T, 0, offset, units=1, size=10) for offset in range(3)]
    tracker.finish(tickets[1])
    tracker.finish(tickets[2])
    assert tracker.positions_to_commit() == {}
    tracker.finish(tickets[0])
    assert tracker.positions_to_commit() == {(T, 0): 3}


def test_fan_out_record_finishes_with_its_last_event() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    ticket = tracker.add(T, 0, 7, units=2, size=10)
    assert tracker.finish(ticket) is False
    assert tracker.positions_to_commit() == {}
    assert tracker.finish(ticket) is True
    assert tracker.positions_to_commit() == {(T, 0): 8}


def test_skipped_records_finish_at_once_but_not_ahead_of_pending_ones() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.add(T, 0, 0, units=0, size=10)
    assert tracker.positions_to_commit() == {(T, 0): 1}
    pending = tracker.add(T, 0, 1, units=1, size=10)
    tracker.add(T, 0, 2, units=0, size=10)
    assert tracker.positions_to_commit() == {(T, 0): 1}
    tracker.finish(pending)
    assert tracker.positions_to_commit() == {(T, 0): 3}
    assert tracker.records_in_flight == 0


def test_committed_positions_are_not_handed_out_twice() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.finish(tracker.add(T, 0, 0, units=1, size=1))
    positions = tracker.positions_to_commit()
    assert tracker.committed(positions) == {(T, 0): 1}
    assert tracker.positions_to_commit() == {}
    assert tracker.committed_position(T, 0) == 1


def test_work_finishing_after_revocation_cannot_move_the_new_generation() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    old = tracker.add(T, 0, 5, units=1, size=1)
    tracker.revoke(T, 0)
    tracker.assign(T, 0)
    fresh = tracker.add(T, 0, 5, units=1, size=1)
    assert tracker.finish(old) is False
    assert not tracker.is_current(old)
    assert tracker.positions_to_commit() == {}
    assert tracker.finish(fresh) is True
    assert tracker.positions_to_commit() == {(T, 0): 6}


def test_in_flight_totals_follow_records_and_bytes() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.assign(T, 1)
    first = tracker.add(T, 0, 0, units=1, size=100)
    tracker.add(T, 1, 0, units=2, size=50)
    assert (tracker.records_in_flight, tracker.bytes_in_flight) == (2, 150)
    tracker.finish(first)
    assert (tracker.records_in_flight, tracker.bytes_in_flight) == (1, 50)
    assert tracker.pending_in([(T, 1)]) == 1
    tracker.revoke(T, 1)
    assert (tracker.records_in_flight, tracker.bytes_in_flight) == (0, 0)


@given(
    units=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60),
    seed=st.integers(),
)
def test_position_never_passes_an_unfinished_record(units: list[int], seed: int) -> None:
    """Finish work in a random order: the position is always the first unfinished offset."""
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    work = []
    for offset, count in enumerate(units):
        ticket = tracker.add(T, 0, offset, units=count, size=1)
        work.extend([ticket] * count)
    remaining = dict(enumerate(units))
    random.Random(seed).shuffle(work)
    for ticket in work:
        tracker.finish(ticket)
        remaining[ticket.offset] -= 1
        first_unfinished = next(
            (offset for offset, left in sorted(remaining.items()) if left > 0), len(units)
        )
        positions = tracker.positions_to_commit()
        assert positions.get((T, 0), 0) <= first_unfinished
        if first_unfinished > 0:
            assert positions.get((T, 0)) == first_unfinished
    assert tracker.records_in_flight == 0
    assert tracker.positions_to_commit() == {(T, 0): len(units)}


class _Clock:
    """A settable clock: the tracker's ages are exact, with no waiting."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_oldest_unfinished_age_is_the_head_records_wait() -> None:
    clock = _Clock()
    tracker = OffsetTracker(clock)
    tracker.assign(T, 0)
    tracker.assign(T, 1)
    first = tracker.add(T, 0, 0, units=1, size=1)
    clock.now = 130.0
    second = tracker.add(T, 0, 1, units=1, size=1)
    clock.now = 160.0
    assert tracker.oldest_unfinished_ages() == {(T, 0): 60.0, (T, 1): 0.0}
    tracker.finish(second)  # a later record finishing does not make the head younger
    assert tracker.oldest_unfinished_ages()[(T, 0)] == 60.0
    tracker.finish(first)
    assert tracker.oldest_unfinished_ages()[(T, 0)] == 0.0


def test_the_oldest_age_moves_to_the_next_unfinished_record() -> None:
    clock = _Clock()
    tracker = OffsetTracker(clock)
    tracker.assign(T, 0)
    first = tracker.add(T, 0, 5, units=2, size=1)
    clock.now = 110.0
    tracker.add(T, 0, 6, units=0, size=1)  # skipped: finished at once, behind the head
    tracker.add(T, 0, 7, units=1, size=1)
    clock.now = 150.0
    tracker.finish(first)
    assert tracker.oldest_unfinished_ages()[(T, 0)] == 50.0  # fan-out: one unit still open
    tracker.finish(first)
    assert tracker.oldest_unfinished_ages()[(T, 0)] == 40.0  # offset 7, added at 110


def test_a_revoked_partition_has_no_age_and_a_new_generation_starts_fresh() -> None:
    clock = _Clock()
    tracker = OffsetTracker(clock)
    tracker.assign(T, 0)
    tracker.add(T, 0, 0, units=1, size=1)
    clock.now = 200.0
    tracker.revoke(T, 0)
    assert tracker.oldest_unfinished_ages() == {}
    tracker.assign(T, 0)
    assert tracker.oldest_unfinished_ages() == {(T, 0): 0.0}


def test_the_lag_position_starts_at_the_groups_commit_then_follows_ours() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0, start=40)
    tracker.assign(T, 1)
    assert tracker.lag_position(T, 0) == 40  # known from assignment, before any record
    assert tracker.lag_position(T, 1) is None
    ticket = tracker.add(T, 1, 9, units=1, size=1)
    assert tracker.lag_position(T, 1) == 9  # stuck first record: the lag counts it
    tracker.finish(ticket)
    assert tracker.committed(tracker.positions_to_commit()) == {(T, 1): 1}
    assert tracker.lag_position(T, 1) == 10
    first = tracker.add(T, 0, 40, units=1, size=1)
    tracker.finish(first)
    assert tracker.committed(tracker.positions_to_commit()) == {(T, 0): 1}  # counted from 40
    assert tracker.lag_position(T, 0) == 41
    assert tracker.lag_position(T, 2) is None
