"""One rate budget for the whole group: several `vibes-bridge run` processes against one limit.

The simulator refuses what exceeds its per-key limit with 429, so the
combined rate it received and the 429 count are the customer-side truth.
Every wait is a bounded poll of a condition; rates come from the simulator's
``received_at`` stamps. What the tests assert of them is the safety side
(never above the budget, next to no 429s), which load cannot make pass or
fail; that the group *reaches* the budget is asserted on the plan (the share
gauges), and measured by ``bench/fleet_rate.py`` (docs/performance.md).
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.bridge_service import BridgeProcess
from tests.support.kafka import produce
from tests.support.service import ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SHARE = "vibes_bridge_rate_share_per_second"


def _fleet_setup(
    service: Callable[..., ServiceSetup], *, partitions: int, rate: float
) -> tuple[ServiceSetup, str]:
    setup = service(
        partitions=partitions, sim_args=("--latency-ms", "5", "--rate-limit", str(rate))
    )
    # A topic of its own that the bridge must create (the broker's auto-creation is not relied on).
    return setup, f"budget-{uuid.uuid4().hex[:10]}"


def _config(setup: ServiceSetup, rate: float, budget_topic: str) -> Path:
    return setup.config(
        vibes=f"username: demo\npassword: demo\nrequests_per_second: {rate}\n",
        fleet=f"topic: {budget_topic}\n",
    )


def _sent_times(setup: ServiceSetup) -> list[float]:
    return sorted(
        datetime.fromisoformat(event["received_at"]).timestamp()
        for event in setup.control.events()
        if event["outcome"] == "sent"
    )


def _rate_between(times: list[float], start: float, end: float) -> float:
    inside = [t for t in times if start <= t <= end]
    return len(inside) / (end - start)


def _all_see(bridges: list[BridgeProcess], members: int) -> bool:
    return all(bridge.metric("vibes_bridge_fleet_members") == members for bridge in bridges)


def test_two_processes_together_keep_to_one_budget(service: Callable[..., ServiceSetup]) -> None:
    rate, total = 80.0, 2000
    setup, budget_topic = _fleet_setup(service, partitions=4, rate=rate)
    produce(setup.bootstrap, setup.topic, orders(total, keys=40))
    config = _config(setup, rate, budget_topic)
    bridges = [setup.start(config), setup.start(config)]
    wait_until(lambda: _all_see(bridges, 2), 60, "both members in the budget table")
    both_known = time.time()
    wait_until(
        lambda: sum(bridge.metric(SHARE) for bridge in bridges) >= rate * 0.99,
        30,
        "the two shares covering the budget",
    )
    wait_until(lambda: setup.control.stats()["sent"] == total, 120, "every event sent")
    times = _sent_times(setup)
    achieved = _rate_between(times, both_known + 2, times[-1] - 1)
    assert achieved <= rate * 1.1, achieved  # one budget, not two
    assert setup.control.stats()["rate_limited"] <= 0.02 * total
    # Redelivery after the rebalance is harmless: Vibes sent each event once.
    assert setup.control.stats()["sent"] == total


def test_survivors_take_up_the_share_of_a_killed_process(
    service: Callable[..., ServiceSetup],
) -> None:
    rate, total = 90.0, 3600
    setup, budget_topic = _fleet_setup(service, partitions=6, rate=rate)
    produce(setup.bootstrap, setup.topic, orders(total, keys=60))
    config = _config(setup, rate, budget_topic)
    bridges = [setup.start(config) for _ in range(3)]
    wait_until(lambda: _all_see(bridges, 3), 60, "three members in the budget table")
    wait_until(
        lambda: all(bridge.metric(SHARE) < rate * 0.5 for bridge in bridges), 30, "split three ways"
    )
    bridges[0].stop(signal.SIGKILL)
    survivors = bridges[1:]
    # The dead member's entry expires (5 s); after the rebalance (session 10 s) its
    # partitions have a new owner. Until then the survivors already use its share.
    wait_until(lambda: _all_see(survivors, 2), 30, "the dead member's entry expired")
    wait_until(
        lambda: sum(bridge.metric(SHARE) for bridge in survivors) >= rate * 0.9,
        30,
        "the survivors' shares covering the budget",
    )
    taken_up = time.time()
    wait_until(lambda: setup.control.stats()["sent"] >= total, 120, "every event sent")
    times = _sent_times(setup)
    achieved = _rate_between(times, taken_up + 12, times[-1] - 1)  # after the rebalance
    assert achieved <= rate * 1.1, achieved
    assert setup.control.stats()["rate_limited"] <= 0.02 * total


def test_the_process_with_the_hot_partition_gets_the_whole_budget(
    service: Callable[..., ServiceSetup],
) -> None:
    rate, hot, cold = 90.0, 2400, 150
    setup, budget_topic = _fleet_setup(service, partitions=3, rate=rate)
    produce(setup.bootstrap, setup.topic, orders(hot, keys=30), partition=0)
    for partition in (1, 2):
        start = hot + partition * cold
        produce(setup.bootstrap, setup.topic, orders(cold, keys=30, start=start), partition)
    total = hot + 2 * cold
    config = _config(setup, rate, budget_topic)
    bridges = [setup.start(config) for _ in range(3)]
    wait_until(lambda: _all_see(bridges, 3), 60, "three members in the budget table")
    # The cold members drain their 150 records each, hand their shares over and then
    # lend their floors too: the hot member plans the whole budget (before lending: 96 %).
    shares: list[float] = []

    def hot_holds_it_all() -> bool:
        shares[:] = sorted(bridge.metric(SHARE) for bridge in bridges)
        return shares[0] == shares[1] == 0 and shares[2] >= rate * 0.999

    wait_until(hot_holds_it_all, 60, "the idle members' floors lent to the busy one")
    assert sum(shares) <= rate * 1.001, shares
    busy_known = time.time()
    wait_until(lambda: setup.control.stats()["sent"] >= total, 120, "every event sent")
    times = _sent_times(setup)
    achieved = _rate_between(times, busy_known + 1, times[-1] - 1)
    assert achieved <= rate * 1.1, achieved
    assert setup.control.stats()["rate_limited"] <= 0.02 * total
