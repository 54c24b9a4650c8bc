"""One company key's failure pauses only its own deliveries (deliverer, virtual time)."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from bridge.delivery import Delivered, Withdrawn
from bridge.delivery.companies import CircuitSettings, CompanyState
from tests.delivery.helpers import Rig, json_answer, mapped, rig
from tests.delivery.virtual_time import VirtualTime

START = VirtualTime().now


def two_companies(
    a_answer: int, a_recovers_at: float, circuit: CircuitSettings | None = None
) -> tuple[dict[str, list[float]], Rig]:
    """Company "b" always answers 200; "a" answers ``a_answer`` until ``a_recovers_at``."""
    time = VirtualTime()
    calls: dict[str, list[float]] = {"a": [], "b": []}

    async def handler(request: httpx.Request) -> httpx.Response:
        company = request.url.path.split("/")[-2]
        now = time.now - START
        calls[company].append(now)
        await time.sleep(0.01)
        if company == "a" and now < a_recovers_at:
            headers = {"Retry-After": "5"} if a_answer == 429 else None
            return json_answer(a_answer, {"errors": ["nope"]}, headers)
        return json_answer(200)

    return calls, rig(
        handler, time=time, credentials_retry_seconds=15.0, circuit=circuit, rate=1000.0
    )


def run_both(r: Rig, count: int, b_every: float = 0.1) -> tuple[list[float], list[Delivered]]:
    """``count`` events of "a" at once, and one event of "b" every ``b_every`` s for 20 s.

    Returns when each of b's deliveries finished, and a's results.
    """
    b_done: list[float] = []

    async def b_stream() -> None:
        for i in range(200):
            await r.deliverer.deliver(mapped(f"b-{i}", company_key="b"))
            b_done.append(r.time.now - START)
            await r.time.sleep(b_every)

    async def scenario() -> list[Delivered]:
        a = asyncio.gather(
            *(r.deliverer.deliver(mapped(f"a-{i}", company_key="a")) for i in range(count))
        )
        b = asyncio.ensure_future(b_stream())
        results = list(await a)
        await b
        return results

    results = asyncio.run(r.time.run(scenario()))
    return b_done, results


@pytest.mark.parametrize(
    ("answer", "state"),
    [(401, CompanyState.CREDENTIALS_REJECTED), (503, CompanyState.CIRCUIT_OPEN)],
)
def test_a_paused_company_does_not_slow_another(answer: int, state: CompanyState) -> None:
    calls, r = two_companies(answer, a_recovers_at=12.0, circuit=CircuitSettings(3, 1.0, 4.0))
    b_done, results = run_both(r, count=20)
    assert [result.status for result in results] == [200] * 20
    # b's 200 events, one every 0.1 s plus 10 ms of latency: never waited for a
    assert b_done[-1] == pytest.approx(199 * 0.11 + 0.01, abs=0.05)
    assert (("a", state)) in r.observer.states
    assert r.observer.states[-1] == ("a", CompanyState.HEALTHY)
    assert r.deliverer.company_states() == {"a": CompanyState.HEALTHY, "b": CompanyState.HEALTHY}
    # while paused, a was probed, not hammered: about one attempt per probe
    paused_calls = [t for t in calls["a"] if 1.0 < t < 12.0]
    assert len(paused_calls) <= 6


def test_a_credentials_pause_of_one_key_keeps_the_process_ready_and_logs_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, r = two_companies(401, a_recovers_at=20.0)
    seen: list[bool] = []

    async def scenario() -> None:
        b = r.deliverer.deliver(mapped("b-0", company_key="b"))
        a = asyncio.ensure_future(r.deliverer.deliver(mapped("a-0", company_key="a")))
        await b
        await r.time.sleep(1.0)
        seen.append(r.deliverer.credentials_rejected)
        await a

    with caplog.at_level(logging.INFO, logger="bridge.delivery"):
        asyncio.run(r.time.run(scenario()))
    assert seen == [False]  # b's credentials pass: not every key is rejected
    assert r.observer.credentials == [True, False]
    errors = [rec.getMessage() for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "company key a" in errors[0]


def test_every_key_rejected_means_credentials_rejected() -> None:
    _, r = two_companies(401, a_recovers_at=20.0)

    async def scenario() -> None:
        a = asyncio.ensure_future(r.deliverer.deliver(mapped("a-0", company_key="a")))
        await r.time.sleep(1.0)
        assert r.deliverer.credentials_rejected  # the only key seen is rejected
        await a

    asyncio.run(r.time.run(scenario()))
    assert not r.deliverer.credentials_rejected


def test_a_429_holds_only_its_key_and_shows_as_held() -> None:
    _calls, r = two_companies(429, a_recovers_at=6.0)
    b_done, results = run_both(r, count=5)
    assert [result.status for result in results] == [200] * 5
    assert b_done[-1] == pytest.approx(199 * 0.11 + 0.01, abs=0.05)
    assert ("a", CompanyState.HELD) in r.observer.states
    assert r.observer.states[-1] == ("a", CompanyState.HEALTHY)
    assert not r.observer.circuit_opens  # 429s are not failures


def test_the_circuit_opens_once_and_is_counted() -> None:
    _, r = two_companies(503, a_recovers_at=10.0, circuit=CircuitSettings(3, 1.0, 4.0))
    run_both(r, count=10)
    assert r.observer.circuit_opens == ["a"]


def test_max_in_flight_bounds_open_requests_over_every_key() -> None:
    time = VirtualTime()

    async def handler(request: httpx.Request) -> httpx.Response:
        await time.sleep(1.0)
        return json_answer(200)

    r = rig(handler, time=time, max_in_flight=3)

    async def scenario() -> list[Delivered]:
        events = [mapped(f"e-{i}", company_key="ab"[i % 2]) for i in range(10)]
        return list(await asyncio.gather(*(r.deliverer.deliver(e) for e in events)))

    assert len(asyncio.run(r.time.run(scenario()))) == 10
    assert r.observer.most_in_flight == 3
    assert r.observer.in_flight == 0


@pytest.mark.parametrize(("answer", "waiting"), [(401, 10), (503, 10), (429, 10)])
def test_waiting_events_of_a_paused_company_are_withdrawn_unsent_when_it_parks(
    answer: int, waiting: int
) -> None:
    """Parking (docs/isolation.md): once ``withdraw`` is set, the key's events waiting for
    its gate, its held budget or a backoff leave with Withdrawn, and none takes the probe."""
    calls, r = two_companies(answer, a_recovers_at=1000.0, circuit=CircuitSettings(3, 1.0, 4.0))
    withdraw = asyncio.Event()
    outcomes: list[str] = []

    async def one(i: int) -> None:
        try:
            await r.deliverer.deliver(mapped(f"a-{i}", company_key="a"), withdraw)
            outcomes.append("delivered")
        except Withdrawn:
            outcomes.append("withdrawn")

    async def scenario() -> int:
        tasks = [asyncio.ensure_future(one(i)) for i in range(waiting)]
        await r.time.sleep(3.0)  # the key is paused (or held) and its events wait
        before = len(calls["a"])
        withdraw.set()
        r.deliverer.wake("a")
        await asyncio.gather(*tasks)
        return len(calls["a"]) - before

    sent_after = asyncio.run(r.time.run(scenario()))
    assert outcomes == ["withdrawn"] * waiting
    # At most the probe already under way goes out (it failed: Vibes does not have the event);
    # no withdrawn event was accepted, so parking cannot double one.
    assert sent_after <= 1


def test_without_withdraw_a_paused_companys_events_wait_as_before() -> None:
    _, r = two_companies(401, a_recovers_at=20.0)
    result = asyncio.run(r.time.run(r.deliverer.deliver(mapped("a-0", company_key="a"))))
    assert result.status == 200
