"""The fleet task in-process with a stand-in link: degraded start, and a lone member's plan.

The link's Kafka side is tested against the real broker by tests/service/test_fleet.py;
here a stand-in lets the service logic's branches be driven deterministically.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping

import pytest

from bridge.config.model import FleetSettings
from bridge.delivery.aimd import AdaptiveLimiter
from bridge.fleet import decode_entry, encode_entry
from bridge.fleet.wire import WireEntry
from bridge.kafka.budget_topic import BudgetRecord, BudgetTopicUnavailable
from bridge.metrics import BridgeMetrics
from bridge.service import fleet_budget
from bridge.service.fleet_budget import TICK_SECONDS, FleetBudget
from tests.support.waiting import wait_until_async

BUDGET = 300.0


class LoopbackLink:
    """Reads back what was published; ``open`` fails when told to."""

    topic = "budget"

    def __init__(
        self,
        *,
        fails: bool = False,
        members: int | None = None,
        read_seconds: float = 0.01,
        others: Mapping[str, WireEntry] | None = None,
    ) -> None:
        self.fails = fails
        self.members = members
        self.read_seconds = read_seconds
        self.reading = threading.Event()
        self.published: list[BudgetRecord] = []
        self.seen: list[WireEntry] = []  # this member's entries, as published
        # Other members' entries, read back on every read (so they stay live).
        self.others = {member: encode_entry(entry) for member, entry in (others or {}).items()}
        self.timeouts: list[float] = []

    def open(self) -> None:
        if self.fails:
            raise BudgetTopicUnavailable("cannot create it: TOPIC_AUTHORIZATION_FAILED")

    def publish(self, member: str, value: bytes | None) -> None:
        self.published.append(BudgetRecord(member, value, 0.0))
        if value is not None:
            self.seen.append(decode_entry(value))

    def read(self, timeout: float) -> list[BudgetRecord]:
        self.timeouts.append(timeout)
        self.reading.set()
        time.sleep(min(timeout, self.read_seconds))  # a poll: blocks, then takes what came
        records, self.published = self.published, []
        return records + [BudgetRecord(m, value, 0.0) for m, value in self.others.items()]

    def group_members(self) -> int | None:
        return self.members

    def close(self, member: str, timeout: float = 5.0) -> None:
        self.publish(member, None)


async def _run_until(fleet: FleetBudget, condition: Callable[[], bool], timeout: float) -> None:
    task = asyncio.ensure_future(fleet.run())
    try:
        await wait_until_async(condition, timeout, "the fleet budget's condition")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _fleet(
    link: LoopbackLink, settings: FleetSettings | None = None
) -> tuple[FleetBudget, AdaptiveLimiter, BridgeMetrics]:
    limiter, metrics = AdaptiveLimiter(BUDGET), BridgeMetrics()
    fleet = FleetBudget(
        limiter,
        metrics,
        budget=BUDGET,
        settings=settings or FleetSettings(),
        group="g",
        link=link,  # type: ignore[arg-type]  # the stand-in has BudgetLink's methods
    )
    limiter.set_default_share(fleet.start_share)
    return fleet, limiter, metrics


def test_a_lone_member_starts_at_the_floor_then_takes_the_whole_budget() -> None:
    fleet, limiter, metrics = _fleet(LoopbackLink())
    assert limiter.rate("demo") == pytest.approx(BUDGET * 0.02)
    asyncio.run(_run_until(fleet, lambda: limiter.rate("demo") == pytest.approx(BUDGET), 10))
    assert metrics.registry.get_sample_value("vibes_bridge_fleet_members") == 1


def test_without_the_topic_the_share_is_static_over_the_group_members() -> None:
    fleet, limiter, metrics = _fleet(LoopbackLink(fails=True, members=3))
    limiter.rate("demo")  # a key the service has seen
    asyncio.run(_run_until(fleet, lambda: limiter.rate("demo") == pytest.approx(100.0), 10))
    assert metrics.registry.get_sample_value("vibes_bridge_fleet_degraded") == 1


def test_without_the_topic_or_the_group_the_share_is_the_floor() -> None:
    fleet, limiter, _metrics = _fleet(LoopbackLink(fails=True, members=None))
    limiter.rate("demo")
    asyncio.run(_run_until(fleet, lambda: fleet._opened is False, 1))
    assert limiter.rate("demo") == pytest.approx(BUDGET * 0.02)


def test_leaving_publishes_a_tombstone() -> None:
    link = LoopbackLink()
    fleet, limiter, _metrics = _fleet(link)
    asyncio.run(_run_until(fleet, lambda: limiter.rate("demo") == pytest.approx(BUDGET), 10))
    asyncio.run(fleet.close())
    assert link.published[-1] == BudgetRecord(fleet.member, None, 0.0)


def test_leaving_waits_for_a_read_the_stopped_run_left_running() -> None:
    # The run is cancelled while its read blocks (as SIGTERM finds it, a poll of up
    # to a tick); the read goes on on its thread and must not race the close.
    link = LoopbackLink(read_seconds=0.5)
    fleet, _limiter, _metrics = _fleet(link)
    asyncio.run(_run_until(fleet, link.reading.is_set, 10))
    asyncio.run(fleet.close())
    assert link.published == [BudgetRecord(fleet.member, None, 0.0)]


def _company_fleet(link: LoopbackLink | None) -> tuple[FleetBudget, AdaptiveLimiter]:
    """Company "small" has a budget of its own (vibes.companies.small.requests_per_second)."""
    own = {"small": 50.0}
    limiter = AdaptiveLimiter(BUDGET, key_rates=own)
    fleet = FleetBudget(
        limiter,
        BridgeMetrics(),
        budget=BUDGET,
        key_budgets=own,
        settings=FleetSettings(),
        group="g",
        link=link,  # type: ignore[arg-type]  # the stand-in has BudgetLink's methods
    )
    limiter.set_default_share(fleet.start_share)
    for key, share in fleet.start_shares().items():
        limiter.set_default_share(share, key)
    return fleet, limiter


def test_a_company_with_its_own_rate_is_planned_on_its_own_budget() -> None:
    fleet, limiter = _company_fleet(LoopbackLink())
    assert limiter.rate("small") == pytest.approx(50.0 * 0.02)  # its own floor
    assert limiter.rate("demo") == pytest.approx(BUDGET * 0.02)

    def both_whole() -> bool:
        return limiter.rate("small") == pytest.approx(50.0) and limiter.rate(
            "demo"
        ) == pytest.approx(BUDGET)

    asyncio.run(_run_until(fleet, both_whole, 10))


def test_a_company_with_its_own_rate_gets_its_static_share_without_the_topic() -> None:
    fleet, limiter = _company_fleet(LoopbackLink(fails=True, members=2))
    limiter.rate("small")
    limiter.rate("demo")

    def halves() -> bool:
        return limiter.rate("small") == pytest.approx(25.0) and limiter.rate(
            "demo"
        ) == pytest.approx(BUDGET / 2)

    asyncio.run(_run_until(fleet, halves, 10))


def test_a_reloaded_rate_changes_that_company_key_only() -> None:
    fleet, limiter = _company_fleet(None)  # fleet.enabled: false
    assert limiter.rate("small") == pytest.approx(50.0)
    assert limiter.rate("demo") == pytest.approx(BUDGET)
    fleet.set_budget("small", 80.0)
    assert limiter.rate("small") == pytest.approx(80.0)
    assert limiter.rate("demo") == pytest.approx(BUDGET)


# A round far longer than the tests: what happens within them is an early publish.
SLOW_ROUNDS = FleetSettings(publish_interval_seconds=30, entry_ttl_seconds=60)
BUSY_OTHER = {"busy": WireEntry("g", 60.0, {"demo": BUDGET}, lends=True)}


def test_an_idle_member_lends_its_floor_to_a_busy_one() -> None:
    link = LoopbackLink(others=BUSY_OTHER)
    fleet, limiter, _metrics = _fleet(link, SLOW_ROUNDS)
    limiter.rate("demo")  # a key the service has seen, idle here
    asyncio.run(_run_until(fleet, lambda: limiter.rates()["demo"].share == 0, 10))
    assert limiter.rate("demo") == 0
    assert link.seen[0] == WireEntry("g", 60.0, {}, lends=True)


def test_a_lent_floor_comes_back_as_soon_as_work_waits_not_a_round_later() -> None:
    link = LoopbackLink(others=BUSY_OTHER)
    fleet, limiter, _metrics = _fleet(link, SLOW_ROUNDS)
    limiter.rate("demo")

    async def scenario() -> None:
        task = asyncio.ensure_future(fleet.run())
        try:
            await wait_until_async(lambda: limiter.rate("demo") == 0, 10, "the floor lent")
            # Without the early publish the floor stays lent until the round 30 s on.
            await asyncio.wait_for(limiter.acquire("demo"), 10)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert limiter.rate("demo") == pytest.approx(BUDGET * 0.02)  # its floor, beside the busy one
    assert link.seen[-1].wants == {"demo": 0.001}


class StuckLink(LoopbackLink):
    """Its goodbye never completes: a budget topic producer whose flush never returns."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def close(self, member: str, timeout: float = 5.0) -> None:
        self.release.wait()


def test_leaving_is_bounded_when_the_goodbye_never_completes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_budget, "CLOSE_SECONDS", 0.2)
    link = StuckLink()
    fleet, limiter, _metrics = _fleet(link)
    try:
        asyncio.run(_run_until(fleet, lambda: limiter.rate("demo") == pytest.approx(BUDGET), 10))
        asyncio.run(asyncio.wait_for(fleet.close(), 10))  # without the bound: never returns
    finally:
        link.release.set()


def test_an_idle_member_reads_slowly_and_traffic_brings_the_tick_back() -> None:
    """Idle CPU: with nothing sent, a read waits longer than a tenth of a second (up to
    the idle tick); once events are sent the tick is short again."""
    link = LoopbackLink()
    fleet, limiter, _metrics = _fleet(link)
    asyncio.run(_run_until(fleet, lambda: len(link.timeouts) >= 3, 10))
    assert min(link.timeouts[1:]) > TICK_SECONDS  # the first read follows the first publish

    async def busy() -> None:
        async def sending() -> None:
            for _ in range(100_000):  # a steady trickle of sends, cancelled below
                await limiter.acquire("demo")
                await asyncio.sleep(0.01)

        sender = asyncio.ensure_future(sending())
        try:
            link.timeouts.clear()
            await _run_until(fleet, lambda: len(link.timeouts) >= 5, 10)
        finally:
            sender.cancel()

    asyncio.run(busy())
    assert link.timeouts[-1] == TICK_SECONDS
