"""AIMD over the planned share: decrease on 429, honour Retry-After, climb back to the share."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.aimd import COOLDOWN_SECONDS, DECREASE, AdaptiveLimiter, Aimd
from tests.delivery.virtual_time import VirtualTime

SHARE = 100.0


def test_a_429_lowers_the_rate_multiplicatively() -> None:
    aimd = Aimd()
    assert aimd.rate(SHARE) == SHARE
    assert aimd.rate_limited(now=10, retry_after=0, share=SHARE)
    assert aimd.rate(SHARE) == pytest.approx(SHARE * DECREASE)


def test_a_burst_of_429s_is_one_decrease() -> None:
    aimd = Aimd()
    aimd.rate_limited(now=10, retry_after=0, share=SHARE)
    assert not aimd.rate_limited(now=10.2, retry_after=0, share=SHARE)  # the in-flight ones
    assert aimd.rate(SHARE) == pytest.approx(SHARE * DECREASE)
    assert aimd.rate_limited(now=10 + COOLDOWN_SECONDS, retry_after=0, share=SHARE)
    assert aimd.rate(SHARE) == pytest.approx(SHARE * DECREASE**2)
    assert aimd.decreases == 2


def test_no_increase_while_retry_after_holds() -> None:
    aimd = Aimd()
    aimd.rate_limited(now=10, retry_after=3, share=SHARE)
    aimd.advance(12.9, SHARE)
    assert aimd.rate(SHARE) == pytest.approx(70)
    aimd.advance(14, SHARE)  # one second after the hold: +5 % of the share
    assert aimd.rate(SHARE) == pytest.approx(75)


def test_additive_increase_back_up_to_the_share_then_aimd_lets_go() -> None:
    aimd = Aimd()
    aimd.rate_limited(now=0, retry_after=0, share=SHARE)
    for second in range(1, 7):
        aimd.advance(float(second), SHARE)
    assert aimd.ceiling is None
    assert aimd.rate(SHARE) == SHARE


def test_a_smaller_share_wins_over_the_ceiling() -> None:
    aimd = Aimd()
    aimd.rate_limited(now=0, retry_after=0, share=SHARE)
    assert aimd.rate(50.0) == 50.0


@given(
    events=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=3),  # gap
            st.booleans(),  # a 429 or a tick
            st.floats(min_value=0, max_value=5),  # Retry-After
            st.floats(min_value=1, max_value=500),  # the share then
        ),
        max_size=60,
    )
)
def test_the_rate_stays_between_the_minimum_and_the_share(
    events: list[tuple[float, bool, float, float]],
) -> None:
    aimd = Aimd()
    now = 0.0
    for gap, limited, retry_after, share in events:
        now += gap
        if limited:
            aimd.rate_limited(now, retry_after, share)
        else:
            aimd.advance(now, share)
        assert 0 < aimd.rate(share) <= share


def test_the_adaptive_limiter_slows_a_key_on_429_and_recovers() -> None:
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(SHARE, clock=time.clock, sleep=time.sleep)

    async def scenario() -> None:
        await limiter.acquire("k")
        limiter.hold("k", 2.0)  # what the deliverer does on a 429 with Retry-After: 2
        assert limiter.rate("k") == pytest.approx(70)
        assert limiter.rate("other") == pytest.approx(SHARE)
        await time.sleep(8.0)
        limiter.advance()

    asyncio.run(time.run(scenario()))
    assert limiter.rate("k") == pytest.approx(SHARE)
    rates = limiter.rates()["k"]
    assert (rates.share, rates.effective, rates.decreases) == (SHARE, SHARE, 1)


def test_the_adaptive_limiter_counts_sends_and_waits_per_key() -> None:
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(10.0, clock=time.clock, sleep=time.sleep)

    async def scenario() -> None:
        await asyncio.gather(*(limiter.acquire("k") for _ in range(5)))

    asyncio.run(time.run(scenario()))
    seconds, usage = limiter.take_usage()
    assert seconds == pytest.approx(0.4)
    assert set(usage) == {"k"}
    assert usage["k"].sends == 5
    assert usage["k"].waited_seconds == pytest.approx(0.1 + 0.2 + 0.3 + 0.4)
    assert usage["k"].waiting == 0
    assert limiter.take_usage()[1] == {}


def test_a_share_set_later_applies_to_waiting_callers() -> None:
    """From a 2 % start share, a raise must not leave callers asleep until their old slots."""
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(100.0, clock=time.clock, sleep=time.sleep)
    limiter.set_default_share(1.0)
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire("k")
        done.append(time.now)

    async def scenario() -> None:
        waiters = [asyncio.ensure_future(one()) for _ in range(20)]  # planned 1 s apart
        await time.sleep(1.5)
        limiter.set_share("k", 100.0)
        await asyncio.gather(*waiters)

    asyncio.run(time.run(scenario()))
    assert max(done) < 2.0  # not 19 s: the waiters re-planned at 100 per second


def test_a_lent_share_holds_callers_until_a_share_comes_back() -> None:
    """Share 0: the floor is lent to the fleet; callers wait (and count as waiting) meanwhile."""
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(SHARE, clock=time.clock, sleep=time.sleep)
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire("k")
        done.append(time.now)

    async def scenario() -> None:
        limiter.set_share("k", 0.0)
        assert limiter.rate("k") == 0
        waiter = asyncio.ensure_future(one())
        await time.sleep(3.0)
        assert done == []
        seconds, usage = limiter.take_usage()
        assert (usage["k"].sends, usage["k"].waiting) == (0, 1)
        assert usage["k"].waited_seconds == pytest.approx(seconds)  # one caller, all along
        limiter.set_share("k", 10.0)
        await waiter

    asyncio.run(time.run(scenario()))
    assert done == [pytest.approx(3.0)]
    assert limiter.rates()["k"].share == 10.0


def test_a_caller_whose_slot_was_planned_before_the_lending_does_not_send() -> None:
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(1.0, clock=time.clock, sleep=time.sleep)
    done: list[float] = []

    async def one() -> None:
        await limiter.acquire("k")
        done.append(time.now)

    async def scenario() -> None:
        waiters = [asyncio.ensure_future(one()) for _ in range(3)]  # slots 0, 1, 2
        await time.sleep(0.5)
        limiter.set_share("k", 0.0)
        await time.sleep(5.0)
        assert len(done) == 1
        limiter.set_share("k", 1.0)
        await asyncio.gather(*waiters)

    asyncio.run(time.run(scenario()))
    assert done[0] == 0.0
    assert min(done[1:]) >= 5.5


def test_a_429_on_a_lent_key_does_not_keep_its_share_down_once_it_comes_back() -> None:
    time = VirtualTime(0.0)
    limiter = AdaptiveLimiter(SHARE, clock=time.clock, sleep=time.sleep)
    limiter.set_share("k", 0.0)
    limiter.hold("k", 0.0)  # the answer to a request sent before the lending
    limiter.set_share("k", SHARE)
    assert limiter.rate("k") == pytest.approx(SHARE)
