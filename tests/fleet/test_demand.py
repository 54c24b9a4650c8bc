"""What a member wants, tick by tick: the whole budget while callers queue, its rate once the
backlog is gone (published at once), nothing after a quiet window (its floor lent), and a want
published at once when a lent key has work again."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import DemandMeter, KeyUsage
from bridge.fleet.demand import ACTIVE_WANT

BUDGET = 300.0
TICK = 0.1


def queued(callers: int, sends: int = 10) -> KeyUsage:
    """A tick with ``callers`` waiting for a slot throughout."""
    return KeyUsage(sends, callers * TICK, TICK, callers)


def sending(sends: int) -> KeyUsage:
    return KeyUsage(sends, 0.0, TICK)


def ticks(meter: DemandMeter, usage: dict[str, KeyUsage], count: int = 1) -> None:
    for _ in range(count):
        meter.add(TICK, usage)


def test_a_backlogged_key_wants_the_whole_budget() -> None:
    meter = DemandMeter()
    ticks(meter, {"k": queued(30)})
    assert meter.due_early()  # a key not published yet: its want goes out at once
    assert meter.publish_early(BUDGET) == {"k": ACTIVE_WANT}  # the floor; more next round
    ticks(meter, {"k": queued(30)}, 9)
    assert not meter.due_early()
    assert meter.publish(BUDGET) == {"k": BUDGET}
    ticks(meter, {"k": queued(30)}, 3)
    assert not meter.due_early()


def test_a_company_with_a_budget_of_its_own_claims_that_budget_not_the_common_one() -> None:
    # vibes.companies.small.requests_per_second: 50; "big" uses the common 300.
    meter = DemandMeter()
    ticks(meter, {"small": queued(30), "big": queued(30)}, 10)
    assert meter.publish(BUDGET, {"small": 50.0}) == {"small": 50.0, "big": BUDGET}
    ticks(meter, {"small": sending(10), "big": sending(10)})  # both backlogs gone
    early = meter.publish_early(BUDGET, {"small": 50.0})
    assert early["small"] <= 50.0


def test_a_backlog_that_is_gone_is_handed_over_at_once() -> None:
    meter = DemandMeter()
    ticks(meter, {"k": queued(30)}, 10)
    meter.publish(BUDGET)
    ticks(meter, {"k": queued(30)}, 4)
    ticks(meter, {})  # the partitions drained: nothing queued, nothing sent
    assert meter.due_early()
    # Its rate since the backlog ended (none), not the window's: the split gives it the floor.
    assert meter.publish_early(BUDGET) == {"k": ACTIVE_WANT}
    ticks(meter, {}, 3)
    assert not meter.due_early()  # handed over once; no flapping
    ticks(meter, {"k": queued(30)}, 2)
    assert not meter.due_early()  # queued again: more waits for the regular round


def test_after_a_quiet_window_the_key_is_left_out_and_its_floor_lent() -> None:
    meter = DemandMeter()
    ticks(meter, {"k": queued(30)}, 10)
    meter.publish(BUDGET)
    ticks(meter, {"k": queued(30)}, 4)
    ticks(meter, {})
    meter.publish_early(BUDGET)
    ticks(meter, {}, 5)
    assert meter.publish(BUDGET) == {"k": ACTIVE_WANT}  # the window still had the backlog
    ticks(meter, {}, 10)
    assert not meter.due_early()
    assert meter.publish(BUDGET) == {}


def test_work_on_a_lent_key_is_published_at_once() -> None:
    meter = DemandMeter()
    ticks(meter, {}, 10)
    assert meter.publish(BUDGET) == {}
    ticks(meter, {}, 3)
    assert not meter.due_early()
    ticks(meter, {"k": KeyUsage(0, 0.02, TICK, 1)})  # a caller waits at the lent key
    assert meter.due_early()
    assert meter.publish_early(BUDGET) == {"k": ACTIVE_WANT}  # the floor, then more next round
    ticks(meter, {"k": queued(20, sends=0)})
    assert not meter.due_early()  # more than the floor waits for the regular round
    assert meter.publish(BUDGET) == {"k": BUDGET}


def test_a_steady_stream_wants_its_rate_with_headroom_and_is_never_early() -> None:
    meter = DemandMeter()
    ticks(meter, {"k": sending(4)}, 10)  # 40 per second, never queued
    assert meter.publish(BUDGET) == {"k": pytest.approx(50)}
    ticks(meter, {"k": sending(4)}, 10)
    assert not meter.due_early()
    assert meter.publish(BUDGET) == {"k": pytest.approx(50)}
    ticks(meter, {"k": sending(4)}, 3)
    assert not meter.due_early()


def test_a_partly_backlogged_window_counts_only_the_calm_after_it() -> None:
    meter = DemandMeter()
    ticks(meter, {"k": queued(5, sends=30)}, 5)
    ticks(meter, {"k": sending(2)}, 5)  # 20 per second once caught up
    assert meter.publish(BUDGET) == {"k": pytest.approx(25)}


usage = st.builds(
    KeyUsage,
    sends=st.integers(0, 40),
    waited_seconds=st.sampled_from([0.0, 0.05, 0.1, 3.0]),
    seconds=st.just(TICK),
    waiting=st.integers(0, 5),
)


@given(rounds=st.lists(st.lists(st.dictionaries(st.sampled_from("ab"), usage)), max_size=20))
def test_early_publishes_happen_at_most_once_per_key_and_round(
    rounds: list[list[dict[str, KeyUsage]]],
) -> None:
    """Only a regular publish claims the whole budget or lends, so early ones cannot flap."""
    meter = DemandMeter()
    for round_ticks in rounds:
        early = 0
        for tick in round_ticks:
            meter.add(TICK, tick)
            if meter.due_early():
                meter.publish_early(BUDGET)
                early += 1
        assert early <= 2 * 2  # per key: one hand-over and one reclaim at most
        wants = meter.publish(BUDGET)  # the regular round
        assert all(0 < want <= BUDGET for want in wants.values())
