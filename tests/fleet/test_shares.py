"""The split of one key's budget: never above it, nobody with work at zero, skew served."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import fair_shares, member_floor, wanted_rate
from bridge.fleet.demand import KeyUsage

budgets = st.floats(min_value=0.5, max_value=10_000)
wants_maps = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(
        st.floats(min_value=0, max_value=20_000),
        st.sampled_from([0.0, math.inf, -1.0, math.nan]),
    ),
    min_size=1,
    max_size=12,
)


@given(budget=budgets, wants=wants_maps)
def test_shares_never_sum_above_the_budget(budget: float, wants: dict[str, float]) -> None:
    shares = fair_shares(budget, wants)
    assert set(shares) == set(wants)
    assert sum(shares.values()) <= budget * (1 + 1e-9)


@given(budget=budgets, wants=wants_maps)
def test_every_member_gets_at_least_the_floor(budget: float, wants: dict[str, float]) -> None:
    shares = fair_shares(budget, wants)
    floor = member_floor(budget, len(wants))
    assert floor > 0
    assert all(share >= floor * (1 - 1e-9) for share in shares.values())


@given(budget=budgets, wants=wants_maps)
def test_a_member_with_work_gets_what_it_wants_or_an_equal_part(
    budget: float, wants: dict[str, float]
) -> None:
    shares = fair_shares(budget, wants)
    equal_part = budget / len(wants)
    for member, want in wants.items():
        if want > 0 and not math.isnan(want):
            assert shares[member] >= min(want, equal_part) * (1 - 1e-9)


@given(budget=budgets, wants=wants_maps)
def test_the_whole_budget_is_handed_out(budget: float, wants: dict[str, float]) -> None:
    assert sum(fair_shares(budget, wants).values()) == pytest.approx(budget)


def test_equal_wants_split_equally() -> None:
    assert fair_shares(300, {"a": 300, "b": 300, "c": 300}) == pytest.approx(
        {"a": 100, "b": 100, "c": 100}
    )


def test_the_hot_member_gets_what_the_quiet_ones_leave() -> None:
    shares = fair_shares(300, {"hot": 300, "quiet": 0, "steady": 20})
    assert shares["quiet"] == pytest.approx(6)  # the floor: 2 % of the budget
    assert shares["steady"] == pytest.approx(20)
    assert shares["hot"] == pytest.approx(274)


def test_a_lone_member_gets_everything() -> None:
    assert fair_shares(300, {"me": 0}) == {"me": 300}
    assert fair_shares(300, {}) == {}


def test_wanted_rate_is_the_budget_when_callers_queue() -> None:
    assert wanted_rate(KeyUsage(sends=100, waited_seconds=30.0, seconds=1.0), 300) == 300


def test_wanted_rate_is_the_sent_rate_with_headroom_otherwise() -> None:
    assert wanted_rate(KeyUsage(sends=40, waited_seconds=0.1, seconds=2.0), 300) == 25
    assert wanted_rate(KeyUsage(sends=0, waited_seconds=0.0, seconds=1.0), 300) == 0
    assert wanted_rate(KeyUsage(sends=10, waited_seconds=0.0, seconds=0.0), 300) == 0
