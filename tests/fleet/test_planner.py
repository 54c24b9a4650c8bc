"""The table's expiry and the planner's timing: conservative start, lower at once, raise late."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import BudgetTable, SharePlanner

SETTLE = 0.5


def planner(member: str = "me", budget: float = 300.0) -> SharePlanner:
    return SharePlanner(member, budget, settle=SETTLE)


def test_entries_expire_after_their_ttl_minus_their_age() -> None:
    table = BudgetTable("g")
    table.put("a", {"k": 10}, ttl=5, age=0, now=100)
    table.put("b", {"k": 10}, ttl=5, age=4, now=100)  # read back from the topic, 4 s old
    assert set(table.live(100.5)) == {"a", "b"}
    assert set(table.live(101.5)) == {"a"}
    assert table.live(105.0) == {}


def test_a_tombstone_removes_the_member() -> None:
    table = BudgetTable("g")
    table.put("a", {"k": 10}, ttl=5, age=0, now=0)
    table.remove("a")
    table.remove("never-seen")
    assert table.wants_for("k", 0) == {}


def test_a_member_that_named_no_key_wants_nothing_of_it() -> None:
    table = BudgetTable("g")
    table.put("a", {"k": 10}, ttl=5, age=0, now=0)
    table.put("b", {}, ttl=5, age=0, now=0)
    assert table.wants_for("k", 1) == {"a": 10, "b": 0.0}
    assert table.company_keys(1) == {"k"}


def test_before_its_own_entry_is_read_back_a_member_takes_the_floor() -> None:
    table = BudgetTable("g")
    table.put("other", {"k": 300}, ttl=5, age=0, now=0)
    plan = planner()
    assert plan.share(table, "k", 0) == pytest.approx(6)


def test_the_first_real_share_waits_for_the_others_to_make_room() -> None:
    table = BudgetTable("g")
    plan = planner()
    assert plan.share(table, "k", 0) == pytest.approx(6)
    table.put("me", {"k": 300}, ttl=5, age=0, now=1)
    table.put("other", {"k": 300}, ttl=5, age=0, now=1)
    assert plan.share(table, "k", 1.0) == pytest.approx(6)  # a raise: not yet
    assert plan.share(table, "k", 1.2) == pytest.approx(6)
    assert plan.share(table, "k", 1.0 + SETTLE) == pytest.approx(150)


def test_a_lower_share_applies_at_once() -> None:
    table = BudgetTable("g")
    plan = planner()
    table.put("me", {"k": 300}, ttl=5, age=0, now=0)
    plan.share(table, "k", 0)
    assert plan.share(table, "k", SETTLE) == pytest.approx(300)
    table.put("newcomer", {"k": 300}, ttl=5, age=0, now=1)
    assert plan.share(table, "k", 1) == pytest.approx(150)


def test_a_member_whose_own_entry_expired_falls_to_the_floor_while_others_live() -> None:
    table = BudgetTable("g")
    plan = planner()
    table.put("me", {"k": 300}, ttl=2, age=0, now=0)
    table.put("other", {"k": 300}, ttl=10, age=0, now=0)
    plan.share(table, "k", 0)
    assert plan.share(table, "k", 1) == pytest.approx(150)
    assert plan.share(table, "k", 3) == pytest.approx(6)


def test_when_no_entry_reaches_anyone_the_share_is_static() -> None:
    table = BudgetTable("g")
    plan = planner()
    for member in ("me", "b", "c"):
        table.put(member, {"k": 300}, ttl=2, age=0, now=0)
    plan.share(table, "k", 0)
    assert plan.share(table, "k", 1) == pytest.approx(100)
    assert plan.share(table, "k", 5) == pytest.approx(100)  # budget / members last seen
    assert plan.static_share(4) == pytest.approx(75)


members = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)
wants = st.floats(min_value=0, max_value=600)


@given(
    rounds=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), wants), max_size=30),
    budget=st.floats(min_value=1, max_value=1000),
)
def test_members_reading_the_same_table_never_plan_above_the_budget(
    rounds: list[dict[str, float]], budget: float
) -> None:
    """Same table, same times: the planned shares sum to at most the budget, every round."""
    table = BudgetTable("g")
    planners = {name: SharePlanner(name, budget, settle=SETTLE) for name in "abcd"}
    now = 0.0
    for entries in rounds:
        now += 0.3
        for name, want in entries.items():
            table.put(name, {"k": want}, ttl=1.0, age=0, now=now)
        shares = {name: plan.share(table, "k", now) for name, plan in planners.items()}
        live = table.live(now)
        planned = sum(shares[name] for name in live)
        assert planned <= budget * (1 + 1e-9)
        assert all(shares[name] > 0 for name in shares)
