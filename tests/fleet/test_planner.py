"""The table's expiry and the planner's timing: conservative start, lower at once, raise late."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import BudgetTable, DemandMeter, KeyUsage, SharePlanner

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
    rounds=st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d"]),
            st.tuples(st.one_of(wants, st.just(0.0)), st.booleans()),
        ),
        max_size=30,
    ),
    budget=st.floats(min_value=1, max_value=1000),
)
def test_members_reading_the_same_table_never_plan_above_the_budget(
    rounds: list[dict[str, tuple[float, bool]]], budget: float
) -> None:
    """Same table, same times: the planned shares sum to at most the budget, every round,
    whoever lends; a member that never lends is never at 0."""
    table = BudgetTable("g")
    planners = {name: SharePlanner(name, budget, settle=SETTLE) for name in "abcd"}
    lent_once: set[str] = set()
    now = 0.0
    for entries in rounds:
        now += 0.3
        for name, (want, lends) in entries.items():
            table.put(name, {"k": want}, ttl=1.0, age=0, now=now, lends=lends)
            if lends:
                lent_once.add(name)
        shares = {name: plan.share(table, "k", now) for name, plan in planners.items()}
        live = table.live(now)
        planned = sum(shares[name] for name in live)
        assert planned <= budget * (1 + 1e-9)
        assert all(share > 0 for name, share in shares.items() if name not in lent_once)


def test_an_idle_lending_member_has_no_share_while_another_is_busy() -> None:
    table = BudgetTable("g")
    table.put("busy", {"k": 300}, ttl=5, age=0, now=0, lends=True)
    table.put("me", {}, ttl=5, age=0, now=0, lends=True)
    busy, me = planner("busy"), planner("me")
    assert me.share(table, "k", 0) == 0
    busy.share(table, "k", 0)
    assert busy.share(table, "k", SETTLE) == pytest.approx(300)
    assert table.lenders(0) == {"busy", "me"}


def test_a_lent_floor_comes_back_within_one_publish_interval() -> None:
    """The worst case with the service's timing: a caller arrives just after a tick; the next
    tick (0.1 s) counts it and publishes at once; the entry is read back by the end of the
    following read (0.1 s poll, so by 0.3 s); the raise waits ``settle``; the planner runs
    once per tick, so it applies at the first tick at or after that."""
    tick, interval = 0.1, 1.0
    table, me, meter = BudgetTable("g"), planner("me"), DemandMeter()
    table.put("busy", {"k": 300}, ttl=5, age=0, now=0, lends=True)
    meter.add(tick, {})
    table.put("me", meter.publish(300), ttl=5, age=0, now=0, lends=True)
    assert me.share(table, "k", 0) == 0
    arrived = 0.0
    meter.add(tick, {"k": KeyUsage(0, tick, tick, 1)})
    assert meter.due_early()
    table.put("me", meter.publish_early(300), ttl=5, age=0, now=0.3, lends=True)
    now = 0.3
    while me.share(table, "k", now) == 0:
        now = round(now + tick, 6)
    assert me.share(table, "k", now) == pytest.approx(6)
    assert now - arrived <= interval
