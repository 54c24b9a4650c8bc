"""Back-pressure: pause at either limit, resume only at half of both (hysteresis)."""

from __future__ import annotations

import pytest

from bridge.service.back_pressure import BackPressure, Verdict

MAX_RECORDS = 100
MAX_BYTES = 1000


def _paused() -> BackPressure:
    pressure = BackPressure(MAX_RECORDS, MAX_BYTES)
    assert pressure.decide(MAX_RECORDS, 0) is Verdict.PAUSE
    return pressure


@pytest.mark.parametrize(
    ("records", "size"),
    [(MAX_RECORDS, 0), (MAX_RECORDS + 5, 10), (1, MAX_BYTES), (0, MAX_BYTES * 3)],
)
def test_either_limit_pauses(records: int, size: int) -> None:
    pressure = BackPressure(MAX_RECORDS, MAX_BYTES)
    assert pressure.decide(records, size) is Verdict.PAUSE
    assert pressure.paused


@pytest.mark.parametrize(
    ("records", "size"), [(0, 0), (MAX_RECORDS - 1, MAX_BYTES - 1), (MAX_RECORDS // 2, 0)]
)
def test_below_both_limits_nothing_happens(records: int, size: int) -> None:
    pressure = BackPressure(MAX_RECORDS, MAX_BYTES)
    assert pressure.decide(records, size) is Verdict.KEEP
    assert not pressure.paused


@pytest.mark.parametrize(
    ("records", "size"),
    [
        (MAX_RECORDS - 1, 0),  # below the limit but above half: no flapping
        (MAX_RECORDS // 2 + 1, 0),
        (0, MAX_BYTES // 2 + 1),  # records roomy, bytes not yet
        (MAX_RECORDS // 2 + 1, MAX_BYTES // 2),
    ],
)
def test_a_paused_consumer_stays_paused_until_both_are_at_half(records: int, size: int) -> None:
    pressure = _paused()
    assert pressure.decide(records, size) is Verdict.KEEP
    assert pressure.paused


@pytest.mark.parametrize(
    ("records", "size"), [(MAX_RECORDS // 2, MAX_BYTES // 2), (0, 0), (10, 100)]
)
def test_at_half_of_both_it_resumes_once(records: int, size: int) -> None:
    pressure = _paused()
    assert pressure.decide(records, size) is Verdict.RESUME
    assert not pressure.paused
    assert pressure.decide(records, size) is Verdict.KEEP


def test_a_full_paused_consumer_does_not_pause_again_every_turn() -> None:
    pressure = _paused()
    assert pressure.decide(MAX_RECORDS, MAX_BYTES) is Verdict.KEEP


def test_new_partitions_while_paused_and_full_are_paused_too() -> None:
    pressure = _paused()
    pressure.assignment_changed()
    assert pressure.decide(MAX_RECORDS, 0) is Verdict.PAUSE
    assert pressure.decide(MAX_RECORDS, 0) is Verdict.KEEP  # the change is taken once


def test_an_assignment_change_alone_does_not_pause_but_resumes_the_new_partitions() -> None:
    pressure = BackPressure(MAX_RECORDS, MAX_BYTES)
    pressure.assignment_changed()
    assert pressure.decide(MAX_RECORDS - 1, 0) is Verdict.RESUME
    assert not pressure.paused
    assert pressure.decide(MAX_RECORDS - 1, 0) is Verdict.KEEP
    assert pressure.decide(MAX_RECORDS, 0) is Verdict.PAUSE


@pytest.mark.parametrize(("records", "size"), [(0, 0), (MAX_RECORDS - 1, 0), (0, MAX_BYTES - 1)])
def test_partitions_assigned_after_a_loss_while_paused_are_resumed(records: int, size: int) -> None:
    """Paused, then everything lost (nothing in flight): resumed with no partitions, then the
    new assignment must be resumed too, or partitions librdkafka kept paused never fetch."""
    pressure = _paused()
    assert pressure.decide(0, 0) is Verdict.RESUME  # the loss emptied the tracker
    pressure.assignment_changed()
    assert pressure.decide(records, size) is Verdict.RESUME


def test_a_new_assignment_while_paused_between_half_and_full_keeps_waiting() -> None:
    pressure = _paused()
    pressure.assignment_changed()
    assert pressure.decide(MAX_RECORDS - 1, 0) is Verdict.KEEP
