"""The offset tracker: commit only up to the first unfinished record, never past it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.records import Position
from bridge.service.commit_metadata import decode
from bridge.service.offsets import OffsetTracker

T = "orders"


def test_position_waits_for_the_first_unfinished_record() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tickets = [tracker.add(T, 0, offset, units=1, size=10) for offset in range(3)]
    tracker.finish(tickets[1])
    tracker.finish(tickets[2])
    # The position waits; the finished offsets behind it go in the metadata.
    assert tracker.positions_to_commit() == {(T, 0): Position(0, "vb1:0:1+2")}
    tracker.finish(tickets[0])
    assert tracker.positions_to_commit() == {(T, 0): Position(3)}


def test_fan_out_record_finishes_with_its_last_event() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    ticket = tracker.add(T, 0, 7, units=2, size=10)
    assert tracker.finish(ticket) is False
    assert tracker.positions_to_commit() == {}
    assert tracker.finish(ticket) is True
    assert tracker.positions_to_commit() == {(T, 0): Position(8)}


def test_skipped_records_finish_at_once_but_not_ahead_of_pending_ones() -> None:
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.add(T, 0, 0, units=0, size=10)
    assert tracker.positions_to_commit() == {(T, 0): Position(1)}
    pending = tracker.add(T, 0, 1, units=1, size=10)
    tracker.add(T, 0, 2, units=0, size=10)
    assert tracker.positions_to_commit() == {(T, 0): Position(1, "vb1:1:1+1")}
    tracker.finish(pending)
    assert tracker.positions_to_commit() == {(T, 0): Position(3)}
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
    assert tracker.positions_to_commit() == {(T, 0): Position(6)}


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
def test_position_and_metadata_never_pass_an_unfinished_record(units: list[int], seed: int) -> None:
    """Finish work in a random order: the position is always the first unfinished offset,
    and the metadata never lists an unfinished one."""
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
        unfinished = {offset for offset, left in remaining.items() if left > 0}
        first_unfinished = min(unfinished, default=len(units))
        position = tracker.positions_to_commit().get((T, 0))
        if position is None:  # nothing new to say: still where the partition started
            assert first_unfinished == 0
            continue
        assert position.offset == first_unfinished
        listed = {o for a, b in decode(position.metadata, position.offset) for o in range(a, b)}
        assert not listed & unfinished
        assert listed == set(range(first_unfinished, len(units))) - unfinished
        assert tracker.records_in_flight == len(unfinished)
    assert tracker.records_in_flight == 0
    assert tracker.positions_to_commit() == {(T, 0): Position(len(units))}


def test_back_pressure_counts_unfinished_records_not_uncommitted_ones() -> None:
    """A stuck head holds the position, not the bound: what finished behind it is not in flight."""
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.add(T, 0, 0, units=1, size=100)  # stuck
    for offset in range(1, 10_001):
        tracker.finish(tracker.add(T, 0, offset, units=1, size=100))
    assert (tracker.records_in_flight, tracker.bytes_in_flight) == (1, 100)
    assert tracker.pending_in([(T, 0)]) == 1
    assert tracker.positions_to_commit() == {(T, 0): Position(0, "vb1:0:1+10000")}


def test_a_metadata_change_alone_is_committed_once() -> None:
    """The position is stuck, more finishes behind it: each change is offered once."""
    tracker = OffsetTracker()
    tracker.assign(T, 0)
    tracker.add(T, 0, 0, units=1, size=1)
    tracker.finish(tracker.add(T, 0, 1, units=1, size=1))
    positions = tracker.positions_to_commit()
    assert positions == {(T, 0): Position(0, "vb1:0:1+1")}
    assert tracker.committed(positions) == {}  # the offset did not move
    assert tracker.positions_to_commit() == {}
    tracker.finish(tracker.add(T, 0, 2, units=1, size=1))
    assert tracker.positions_to_commit() == {(T, 0): Position(0, "vb1:0:1+2")}


def test_metadata_past_its_limit_lists_only_the_first_runs() -> None:
    tracker = OffsetTracker(metadata_limit=len("vb1:0:1+1,1+1"))
    tracker.assign(T, 0)
    for offset in range(8):  # even offsets stuck, odd ones finished
        ticket = tracker.add(T, 0, offset, units=1, size=1)
        if offset % 2:
            tracker.finish(ticket)
    assert tracker.positions_to_commit() == {(T, 0): Position(0, "vb1:0:1+1,1+1")}


def test_a_commits_finished_offsets_are_skipped_and_kept_in_the_next_commit() -> None:
    """After a restart: 10 was stuck, 11-19 and 25-29 finished; 20-24 were not."""
    tracker = OffsetTracker()
    assert tracker.assign(T, 0, start=Position(10, "vb1:10:1+9,5+5")) == 14
    assert not tracker.finished_before(T, 0, 10)
    tracker.add(T, 0, 10, units=1, size=1)  # still stuck
    assert tracker.finished_before(T, 0, 11)
    tracker.add(T, 0, 11, units=0, size=0)  # what the loop does with it
    # Only 11 consumed again so far: the rest of the old list is kept, never lost.
    assert tracker.positions_to_commit() == {(T, 0): Position(10, "vb1:10:1+9,5+5")}
    assert [tracker.finished_before(T, 0, offset) for offset in (19, 20, 24, 25, 29, 30)] == [
        True,
        False,
        False,
        True,
        True,
        False,
    ]


@pytest.mark.parametrize("metadata", ["", "vb2:10:1+5", "vb1:9:1+5", "vb1:10:", "garbage"])
def test_a_commit_without_our_metadata_skips_nothing(metadata: str) -> None:
    tracker = OffsetTracker()
    assert tracker.assign(T, 0, start=Position(10, metadata)) == 0
    assert not any(tracker.finished_before(T, 0, offset) for offset in range(10, 20))


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
    tracker.assign(T, 0, start=Position(40))
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
