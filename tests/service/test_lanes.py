"""Per-key lanes: one key in order, keys side by side, revoked work dropped."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from bridge.service.lanes import KeyLanes
from tests.support.waiting import wait_until_async

IDLE_TIMEOUT_S = 30.0


async def idle(lanes: KeyLanes[Any]) -> None:
    """Until every lane has finished its work: bounded, so a lane that never ends fails."""
    await wait_until_async(lambda: not lanes.busy, IDLE_TIMEOUT_S, "every lane idle", 0.005)


def test_same_key_in_order_other_keys_concurrently() -> None:
    async def scenario() -> tuple[dict[str, list[int]], int]:
        seen: dict[str, list[int]] = {}
        running = 0
        peak = 0
        rng = random.Random(7)

        async def work(item: tuple[str, int]) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(rng.random() / 200)  # random latency, as Vibes has
            seen.setdefault(item[0], []).append(item[1])
            running -= 1

        lanes: KeyLanes[tuple[str, int]] = KeyLanes(work)
        for number in range(30):
            for key in ("a", "b", "c"):
                lanes.push(key, (key, number))
        await idle(lanes)
        return seen, peak

    seen, peak = asyncio.run(scenario())
    assert seen == {key: list(range(30)) for key in ("a", "b", "c")}
    assert peak == 3


def test_dropping_cancels_running_and_queued_items_but_keeps_the_lane() -> None:
    async def scenario() -> list[int]:
        done: list[int] = []
        gate = asyncio.Event()

        async def work(item: int) -> None:
            if item == 0:
                await gate.wait()
            done.append(item)

        lanes: KeyLanes[int] = KeyLanes(work)
        for item in range(5):
            lanes.push("k", item)
        await asyncio.sleep(0)
        assert lanes.drop(lambda item: item in (0, 2)) == 2
        await idle(lanes)
        return done

    assert asyncio.run(scenario()) == [1, 3, 4]


def test_cancel_all_stops_everything() -> None:
    async def scenario() -> int:
        forever = asyncio.Event()

        async def work(_item: int) -> None:
            await forever.wait()

        lanes: KeyLanes[int] = KeyLanes(work)
        for item in range(4):
            lanes.push(item % 2, item)
        lanes.push(None, 9)
        await asyncio.sleep(0)
        await lanes.cancel_all()
        return lanes.busy

    assert asyncio.run(scenario()) == 0


def test_a_failing_item_is_logged_and_the_lane_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[int]:
        done: list[int] = []

        async def work(item: int) -> None:
            if item == 1:
                raise RuntimeError("a bug")
            done.append(item)

        lanes: KeyLanes[int] = KeyLanes(work)
        for item in range(4):
            lanes.push("k", item)
        await idle(lanes)
        return done

    assert asyncio.run(scenario()) == [0, 2, 3]
    assert "delivery task failed" in caplog.text
