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


# Lending: members that say they lend and want nothing give their floor up while others need it.

lending_cases = st.dictionaries(
    st.sampled_from(list("abcdefgh")),
    st.tuples(st.sampled_from([0.0, 0.0, 1.0, 50.0, 150.0, 300.0, 1e4]), st.booleans()),
    min_size=1,
    max_size=8,
)


def _split(case: dict[str, tuple[float, bool]]) -> tuple[dict[str, float], set[str]]:
    wants = {member: want for member, (want, _lends) in case.items()}
    return wants, {member for member, (_want, lends) in case.items() if lends}


def _lending(
    budget: float, case: dict[str, tuple[float, bool]]
) -> tuple[dict[str, float], set[str], dict[str, float]]:
    """The wants, the lenders and the split of one generated case."""
    wants, lenders = _split(case)
    return wants, lenders, fair_shares(budget, wants, lenders)


def _idle(wants: dict[str, float], lenders: set[str]) -> set[str]:
    return {member for member in lenders if wants[member] == 0}


def _unmet(budget: float, wants: dict[str, float], shares: dict[str, float]) -> set[str]:
    floor = member_floor(budget, len(wants))
    return {m for m, w in wants.items() if shares[m] < min(max(w, floor), budget) * (1 - 1e-9)}


@given(budget=budgets, case=lending_cases)
def test_lending_never_sums_above_the_budget_and_wastes_nothing(
    budget: float, case: dict[str, tuple[float, bool]]
) -> None:
    wants, _lenders, shares = _lending(budget, case)
    assert set(shares) == set(wants)
    assert sum(shares.values()) == pytest.approx(budget)  # work conserving: all handed out
    assert sum(shares.values()) <= budget * (1 + 1e-9)


@given(budget=budgets, case=lending_cases)
def test_idle_floors_are_lent_whenever_another_member_wants_more(
    budget: float, case: dict[str, tuple[float, bool]]
) -> None:
    wants, lenders, shares = _lending(budget, case)
    idle = _idle(wants, lenders)
    unmet = _unmet(budget, wants, shares)
    if unmet and len(idle) < len(wants):
        assert all(shares[member] == 0 for member in idle)
    if any(shares[member] > 0 for member in idle):  # a floor kept: nobody needed it
        assert not unmet
    for member in set(wants) - idle:  # everyone else: at least the floor
        assert shares[member] >= member_floor(budget, len(wants)) * (1 - 1e-9)


@given(budget=budgets, case=lending_cases, old=st.sets(st.sampled_from(list("abcdefgh"))))
def test_a_group_of_mixed_versions_stays_within_the_budget(
    budget: float, case: dict[str, tuple[float, bool]], old: set[str]
) -> None:
    """During a rolling update, members from before lending split without it; none lends."""
    wants, lenders = _split(case)
    lenders -= old  # an old member's entry has no "lends"
    new_view = fair_shares(budget, wants, lenders)
    old_view = fair_shares(budget, wants)
    planned = sum(old_view[m] if m in old else new_view[m] for m in wants)
    assert planned <= budget * (1 + 1e-9)


def test_the_hot_member_borrows_the_idle_floors() -> None:
    wants = {"hot": 300, "idle-1": 0, "idle-2": 0}
    assert fair_shares(300, wants, {"idle-1", "idle-2"}) == pytest.approx(
        {"hot": 300, "idle-1": 0, "idle-2": 0}
    )
    assert fair_shares(300, wants, {"idle-1"}) == pytest.approx(
        {"hot": 294, "idle-1": 0, "idle-2": 6}  # idle-2 (an older member) keeps its floor
    )
    assert fair_shares(300, wants) == pytest.approx({"hot": 288, "idle-1": 6, "idle-2": 6})


def test_nothing_is_lent_when_every_want_is_met() -> None:
    wants = {"steady": 40, "idle": 0}
    assert fair_shares(300, wants, {"idle", "steady"}) == pytest.approx(
        {"steady": 40 + 127, "idle": 6 + 127}  # the leftover spread as headroom, floor kept
    )
    assert fair_shares(300, {"me": 0}, {"me"}) == {"me": 300}  # a lone member keeps it all
    assert fair_shares(300, {"a": 0, "b": 0}, {"a", "b"}) == {"a": 150, "b": 150}


def test_a_quiet_member_that_still_has_work_keeps_its_floor() -> None:
    # ACTIVE_WANT: sent nothing since its backlog ended, but not idle for a whole window.
    shares = fair_shares(300, {"hot": 300, "quiet": 0.001}, {"hot", "quiet"})
    assert shares == pytest.approx({"hot": 294, "quiet": 6})
