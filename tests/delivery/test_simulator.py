"""The deliverer against the real simulator over HTTP (``python -m bridge sim``), default transport.

The simulator's own counters decide: every event ``sent`` exactly once, whatever
faults were injected. Every wait is bounded; none is a fixed sleep.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from pydantic import SecretStr

from bridge.config.model import VibesSettings
from bridge.delivery import (
    Backoff,
    CredentialsSource,
    Delivered,
    Deliverer,
    RateLimiter,
    VibesClient,
)
from bridge.errors import EventExpired, EventRejected, RetryReason
from bridge.mapping.engine import MappedEvent
from tests.delivery.helpers import RecordingObserver, mapped
from tests.support.simulator import SimProcess, reset, start_sim, stats
from tests.support.simulator import events as accepted
from tests.support.waiting import wait_until_async

T = TypeVar("T")
BOUND_S = 120.0  # no scenario here needs more than a few seconds on an idle machine


@pytest.fixture(scope="module")
def vibes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    sim = start_sim(["--seed", "11"], tmp_path_factory.mktemp("sim") / "sim.log")
    yield sim
    assert sim.stop() == 0, sim.log()


@pytest.fixture
def sim(vibes: SimProcess) -> SimProcess:
    return reset(vibes)


def set_faults(sim: SimProcess, **faults: float) -> None:
    httpx.post(f"{sim.url}/_sim/faults", json=faults, timeout=10).raise_for_status()


@dataclass
class TimedObserver(RecordingObserver):
    """Also keeps when each attempt started and ended (monotonic seconds) and its status."""

    attempts: list[tuple[float, float, int | None]] = field(default_factory=list)

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        super().attempt_finished(event, status, seconds)
        now = time.monotonic()
        self.attempts.append((now - seconds, now, status))


@dataclass
class Bridge:
    deliverer: Deliverer
    observer: TimedObserver
    client: VibesClient


def bridge(
    sim: SimProcess,
    *,
    credentials: CredentialsSource | None = None,
    rate: float = 10_000.0,
    timeout_seconds: float = 5.0,
    max_retry_duration: float | None = None,
) -> Bridge:
    client = VibesClient(
        base_url=sim.url,
        api_version="2",
        timeout_seconds=timeout_seconds,
        credentials=credentials or CredentialsSource.fixed("demo", "demo"),
        max_connections=32,
    )
    observer = TimedObserver()
    deliverer = Deliverer(
        client,
        RateLimiter(rate),
        observer=observer,
        max_retry_duration=max_retry_duration,
        backoff=Backoff(initial=0.01, cap=0.2, rng=random.Random(5)),
        credentials_retry_seconds=0.2,
    )
    return Bridge(deliverer, observer, client)


def run(b: Bridge, scenario: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        try:
            return await asyncio.wait_for(scenario(), BOUND_S)
        finally:
            await b.client.aclose()

    return asyncio.run(bounded())


async def deliver_all(
    b: Bridge, events: list[MappedEvent], concurrency: int = 32
) -> list[Delivered]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(event: MappedEvent) -> Delivered:
        async with semaphore:
            return await b.deliverer.deliver(event)

    return list(await asyncio.gather(*(one(event) for event in events)))


def test_a_storm_of_503s_timeouts_and_drops_delivers_every_event_once(sim: SimProcess) -> None:
    set_faults(sim, error_rate=0.2, timeout_rate=0.05, timeout_hold_s=1.0, drop_rate=0.1)
    b = bridge(sim, timeout_seconds=0.3)
    events = [mapped(f"storm-{i}") for i in range(200)]

    results = run(b, lambda: deliver_all(b, events))

    assert all(result.status == 200 for result in results)
    counts = stats(sim)
    assert counts["sent"] == 200
    assert counts["duplicates"] == 0
    assert sorted(entry["event_id"] for entry in accepted(sim)) == sorted(
        e.event_id for e in events
    )
    assert counts["faults_503"] > 0
    assert counts["faults_timeout"] > 0
    assert counts["faults_drop"] > 0
    retries = b.observer.retries
    assert retries[RetryReason.STATUS_5XX] == counts["faults_503"]
    assert retries[RetryReason.TIMEOUT] == counts["faults_timeout"]
    assert retries[RetryReason.CONNECTION] == counts["faults_drop"]
    assert b.observer.in_flight == 0


def test_429_retry_after_is_honoured_for_the_whole_key(sim: SimProcess) -> None:
    set_faults(sim, rate_limit=5, rate_limit_burst=1)
    b = bridge(sim, rate=50.0)  # plans ten times what the simulator allows
    events = [mapped(f"limited-{i}") for i in range(8)]

    results = run(b, lambda: deliver_all(b, events))

    assert all(result.status == 200 for result in results)
    assert stats(sim)["sent"] == 8
    assert b.observer.retries[RetryReason.STATUS_429] > 0
    refusals = [end for _, end, status in b.observer.attempts if status == 429]
    starts = [start for start, _, _ in b.observer.attempts]
    for refused_at in refusals:  # the simulator's Retry-After is 1 s
        too_early = [s for s in starts if refused_at + 0.05 < s < refused_at + 0.95]
        assert not too_early, (refused_at, too_early)


def test_400_is_rejected_with_vibes_messages_and_not_retried(sim: SimProcess) -> None:
    b = bridge(sim)
    event = mapped("bad-1", event_data={"order_id": "o-1"})  # no recipient

    async def scenario() -> Delivered:
        return await b.deliverer.deliver(event)

    with pytest.raises(EventRejected) as raised:
        run(b, scenario)
    assert raised.value.status == 400
    assert "recipient" in raised.value.response
    assert raised.value.attempts == 1
    assert stats(sim)["rejected"] == 1


def test_a_duplicate_event_id_is_delivered_not_sent_twice(sim: SimProcess) -> None:
    b = bridge(sim)

    async def scenario() -> list[Delivered]:
        first = await b.deliverer.deliver(mapped("dup-1"))
        return [first, await b.deliverer.deliver(mapped("dup-1"))]

    assert run(b, scenario) == [Delivered(200, 1), Delivered(200, 1)]
    counts = stats(sim)
    assert (counts["sent"], counts["duplicates"]) == (1, 1)


def test_401_pauses_and_a_rewritten_secret_file_resumes(sim: SimProcess, tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("wrong\n")
    settings = VibesSettings(
        company_key="demo", username=SecretStr("demo"), password_file="password"
    )
    credentials = CredentialsSource.from_settings(settings, tmp_path / "bridge.yaml")
    b = bridge(sim, credentials=credentials)
    events = [mapped(f"cred-{i}") for i in range(5)]

    async def scenario() -> list[Delivered]:
        deliveries = asyncio.ensure_future(deliver_all(b, events))
        await wait_until_async(lambda: b.deliverer.credentials_rejected, 30, "credentials to fail")
        probing = "a second probe (it keeps probing)"
        await wait_until_async(lambda: stats(sim)["unauthorized"] >= 2, 30, probing)
        assert stats(sim)["sent"] == 0
        assert not deliveries.done()
        password.write_text("demo\n")
        return await deliveries

    results = run(b, scenario)
    assert all(result.status == 200 for result in results)
    assert not b.deliverer.credentials_rejected
    assert b.observer.credentials == [True, False]
    assert stats(sim)["sent"] == 5


def test_max_retry_duration_expires_during_an_outage(sim: SimProcess) -> None:
    set_faults(sim, error_rate=1.0)
    b = bridge(sim, max_retry_duration=0.5)

    async def scenario() -> Delivered:
        return await b.deliverer.deliver(mapped("outage-1"))

    with pytest.raises(EventExpired) as raised:
        run(b, scenario)
    assert raised.value.code == "max_retry_duration"
    assert raised.value.attempts >= 2
    assert stats(sim)["sent"] == 0
