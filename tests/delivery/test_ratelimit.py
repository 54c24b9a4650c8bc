"""The per-company-key limiter: planned slots, holds, run-time rate changes (virtual time)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.ratelimit import KeyBudget, RateLimiter, Withdrawn
from tests.delivery.virtual_time import VirtualTime

START = 1000.0


def limited(rate: float) -> tuple[VirtualTime, RateLimiter]:
    time = VirtualTime(START)
    return time, RateLimiter(rate, clock=time.clock, sleep=time.sleep)


def test_sequential_acquires_are_spaced_by_the_interval() -> None:
    time, limiter = limited(5.0)
    sent: list[float] = []
    waits: list[float] = []

    async def scenario() -> None:
        for _ in range(6):
            waits.append(await limiter.acquire("demo"))
            sent.append(time.now - START)

    asyncio.run(time.run(scenario()))
    assert sent == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert waits == pytest.approx([0.0, 0.2, 0.2, 0.2, 0.2, 0.2])


def test_many_waiters_wake_one_slot_at_a_time() -> None:
    time, limiter = limited(10.0)
    sent: list[float] = []

    async def one() -> None:
        await limiter.acquire("demo")
        sent.append(time.now - START)

    async def scenario() -> None:
        await asyncio.gather(*(one() for _ in range(30)))

    asyncio.run(time.run(scenario()))
    assert sorted(sent) == pytest.approx([i / 10 for i in range(30)])


def test_keys_have_their_own_budgets() -> None:
    time, limiter = limited(1.0)
    sent: dict[str, list[float]] = defaultdict(list)

    async def one(key: str) -> None:
        await limiter.acquire(key)
        sent[key].append(time.now - START)

    async def scenario() -> None:
        await asyncio.gather(*(one(key) for key in ("a", "b") * 3))

    asyncio.run(time.run(scenario()))
    assert sent == {"a": [0.0, 1.0, 2.0], "b": [0.0, 1.0, 2.0]}


def test_a_hold_voids_slots_of_sleeping_waiters() -> None:
    time, limiter = limited(1.0)
    sent: list[float] = []

    async def one() -> None:
        await limiter.acquire("demo")
        sent.append(time.now - START)

    async def scenario() -> None:
        waiters = [asyncio.ensure_future(one()) for _ in range(3)]  # slots 0, 1, 2
        await time.sleep(0.5)
        limiter.hold("demo", 2.0)  # a 429 with Retry-After: 2 at 0.5
        await asyncio.gather(*waiters)

    asyncio.run(time.run(scenario()))
    assert sent == pytest.approx([0.0, 2.5, 3.5])


def test_a_waiter_leaves_a_long_hold_within_a_nap_when_asked() -> None:
    """Parking (docs/isolation.md): an event that began waiting while its key was healthy
    must still leave once its key is held and parked, not wait out every hold."""
    time, limiter = limited(1.0)
    parked = False

    async def scenario() -> float:
        await limiter.acquire("demo")  # sent at 0: the next slot is at 1.0
        limiter.hold("demo", 600.0)
        waiting = asyncio.ensure_future(limiter.acquire("demo", lambda: parked))
        await time.sleep(5.0)
        assert not waiting.done()
        nonlocal parked
        parked = True
        with pytest.raises(Withdrawn):
            await waiting
        return time.now - START

    assert asyncio.run(time.run(scenario())) <= 5.0 + 0.25


def test_a_short_hold_keeps_the_distance_from_the_last_send() -> None:
    time, limiter = limited(1.0)

    async def scenario() -> float:
        await limiter.acquire("demo")  # sent at 0
        await time.sleep(0.1)
        limiter.hold("demo", 0.2)  # ends at 0.3, but the rate allows the next send at 1.0
        await limiter.acquire("demo")
        return time.now - START

    assert asyncio.run(time.run(scenario())) == pytest.approx(1.0)


def test_a_hold_on_one_key_leaves_the_other_alone() -> None:
    time, limiter = limited(1.0)

    async def scenario() -> float:
        limiter.hold("a", 30.0)
        return await limiter.acquire("b")

    assert asyncio.run(time.run(scenario())) == 0.0


def test_set_rate_applies_from_the_next_slot() -> None:
    time, limiter = limited(1.0)
    sent: list[float] = []

    async def scenario() -> None:
        await limiter.acquire("demo")  # slot 0, next free 1.0
        limiter.set_rate("demo", 4.0)
        for _ in range(3):
            await limiter.acquire("demo")
            sent.append(time.now - START)
        limiter.set_rate("demo", 0.5)
        await limiter.acquire("demo")
        sent.append(time.now - START)

    asyncio.run(time.run(scenario()))
    assert sent == pytest.approx([0.25, 0.5, 0.75, 2.75])
    assert limiter.rate("demo") == pytest.approx(0.5)
    assert limiter.rate("other") == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan")])
def test_rates_must_be_positive(rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rate)
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(1.0).set_rate("demo", rate)


def test_a_cancelled_waiter_only_wastes_its_slot() -> None:
    time, limiter = limited(1.0)
    sent: list[float] = []

    async def scenario() -> None:
        await limiter.acquire("demo")
        doomed = asyncio.ensure_future(limiter.acquire("demo"))  # slot 1
        await time.settle()
        doomed.cancel()
        await limiter.acquire("demo")  # slot 2: never earlier than planned
        sent.append(time.now - START)

    asyncio.run(time.run(scenario()))
    assert sent == pytest.approx([2.0])


# ----------------------------------------------------------------- the planning property


@dataclass(frozen=True)
class Op:
    gap: float  # virtual seconds after the previous operation
    kind: str  # acquire | set_rate | hold
    key: str
    value: float  # the rate, or the hold in seconds


ops = st.lists(
    st.builds(
        Op,
        gap=st.sampled_from([0.0, 0.0, 0.0, 0.01, 0.1, 0.33, 1.0, 2.5]),
        kind=st.sampled_from(["acquire"] * 6 + ["set_rate", "hold"]),
        key=st.sampled_from(["a", "b"]),
        value=st.floats(min_value=0.5, max_value=40.0),
    ),
    min_size=1,
    max_size=80,
)


@contextmanager
def planned_intervals() -> Iterator[dict[float, float]]:
    """Every reserved slot with the interval it was planned under.

    Two keys may plan the same instant: the shorter interval is kept, which
    only makes the property's bound looser, never wrong.
    """
    plans: dict[float, float] = {}
    reserve = KeyBudget.reserve

    def recording(self: KeyBudget, now: float) -> float:
        slot = reserve(self, now)
        plans[slot] = min(self.interval, plans.get(slot, self.interval))
        return slot

    with patch.object(KeyBudget, "reserve", recording):
        yield plans


def windows(sends: list[float]) -> Iterator[list[float]]:
    """The sends in [t, t + 1] for each send t."""
    ordered = sorted(sends)
    for index, start in enumerate(ordered):
        yield [t for t in ordered[index:] if t <= start + 1.0]


@given(operations=ops, rate=st.floats(min_value=0.5, max_value=40.0))
def test_no_one_second_window_holds_more_than_the_rate(operations: list[Op], rate: float) -> None:
    time, limiter = limited(rate)
    sent: dict[str, list[float]] = defaultdict(list)

    async def acquire(key: str) -> None:
        await limiter.acquire(key)
        sent[key].append(time.now)

    async def scenario() -> None:
        tasks = []
        for op in operations:
            if op.gap:
                await time.sleep(op.gap)
            if op.kind == "acquire":
                tasks.append(asyncio.ensure_future(acquire(op.key)))
            elif op.kind == "set_rate":
                limiter.set_rate(op.key, op.value)
            else:
                limiter.hold(op.key, op.value / 10)
        await asyncio.gather(*tasks)

    with planned_intervals() as plans:
        asyncio.run(time.run(scenario()))
    assert sum(len(v) for v in sent.values()) == sum(op.kind == "acquire" for op in operations)
    for key_sends in sent.values():
        for window in windows(key_sends):
            highest_rate = max(1.0 / plans[t] for t in window)
            assert len(window) <= highest_rate + 1 + 1e-9, (window, highest_rate)


def test_a_lowered_rate_applies_to_callers_already_waiting() -> None:
    time, limiter = limited(10.0)
    sent: list[float] = []

    async def one() -> None:
        await limiter.acquire("demo")
        sent.append(time.now - START)

    async def scenario() -> None:
        waiters = [asyncio.ensure_future(one()) for _ in range(4)]  # slots 0, .1, .2, .3
        await time.settle()
        limiter.set_rate("demo", 1.0)
        await asyncio.gather(*waiters)

    asyncio.run(time.run(scenario()))
    assert sorted(sent) == pytest.approx([0.0, 1.0, 2.0, 3.0])


def test_a_key_with_a_rate_of_its_own_starts_at_it() -> None:
    limiter = RateLimiter(300.0, key_rates={"small": 50.0})
    assert limiter.rate("small") == 50.0
    assert limiter.rate("other") == 300.0
