"""Registry-outage holds: the backoff doubles to its cap, releases on time, resets."""

from __future__ import annotations

import pytest

from bridge.service.holds import PartitionHolds
from tests.service.loop_fakes import FakeClock

P0 = ("shop.orders", 0)
P1 = ("shop.orders", 1)


def _holds(clock: FakeClock, backoff: tuple[float, float] = (1.0, 30.0)) -> PartitionHolds:
    return PartitionHolds(backoff, clock)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ((1.0, 30.0), [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]),
        ((0.5, 3.0), [0.5, 1.0, 2.0, 3.0, 3.0]),
        ((2.0, 2.0), [2.0, 2.0, 2.0]),
    ],
)
def test_each_failure_in_a_row_doubles_the_hold_up_to_the_cap(
    backoff: tuple[float, float], expected: list[float]
) -> None:
    clock = FakeClock()
    holds = _holds(clock, backoff)
    for seconds in expected:
        holds.hold(P0)
        clock.advance(seconds - 0.001)
        assert holds.due() == []
        assert P0 in holds
        clock.advance(0.001)
        assert holds.due() == [P0]
        assert P0 not in holds


def test_only_the_first_failure_in_a_row_asks_to_be_logged() -> None:
    holds = _holds(FakeClock())
    assert holds.hold(P0) is True
    assert holds.hold(P0) is False
    assert holds.hold(P1) is True  # another partition's outage is its own news
    holds.succeeded(P0)
    assert holds.hold(P0) is True


def test_a_success_starts_the_backoff_anew() -> None:
    clock = FakeClock()
    holds = _holds(clock)
    for _ in range(4):
        holds.hold(P0)
    holds.succeeded(P0)
    holds.hold(P0)
    clock.advance(1.0)
    assert holds.due() == [P0]


def test_a_released_partition_is_released_once() -> None:
    clock = FakeClock()
    holds = _holds(clock)
    holds.hold(P0)
    clock.advance(5)
    assert holds.due() == [P0]
    assert holds.due() == []


def test_forgetting_a_revoked_partition_drops_its_hold_and_its_failures() -> None:
    clock = FakeClock()
    holds = _holds(clock)
    holds.hold(P0)
    holds.hold(P0)
    holds.hold(P1)
    holds.forget([P0])
    assert P0 not in holds
    assert P1 in holds
    clock.advance(100)
    assert holds.due() == [P1]
    assert holds.hold(P0) is True  # the count started over
