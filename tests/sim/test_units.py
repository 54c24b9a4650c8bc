"""The simulator's pure pieces, without sockets: bucket, fault draws, auth, memory."""

from __future__ import annotations

import asyncio
import base64
import random
import threading
from collections import Counter

import httpx
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bridge.sim.app import Simulator
from bridge.sim.auth import BasicAuth
from bridge.sim.config import SimConfig
from bridge.sim.faults import (
    KNOB_RANGES,
    MAX_RATE,
    MIN_RATE,
    Fault,
    FaultPlan,
    FaultSettings,
    SettingsError,
)
from bridge.sim.ratelimit import RateLimiter, TokenBucket
from bridge.sim.server import bind, serve
from bridge.sim.state import EventLog, RecordedEvent, Stats
from bridge.vibes.api import basic_auth_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NoDrawRandom(random.Random):
    """Fails the test if a draw is made where none should be."""

    def random(self) -> float:
        raise AssertionError("no random draw expected")

    def uniform(self, a: float, b: float) -> float:
        raise AssertionError("no random draw expected")


# --- token bucket ----------------------------------------------------------------------


def test_bucket_allows_a_burst_then_refuses_until_refilled() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)  # refusals spend nothing
    clock.now += 0.25
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(0.5)


def test_bucket_never_holds_more_than_its_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, capacity=2, clock=clock)
    clock.now += 3600
    assert [bucket.take() == 0.0 for _ in range(3)] == [True, True, False]


def test_bucket_capacity_is_at_least_one() -> None:
    bucket = TokenBucket(rate=0.5, capacity=0.1, clock=FakeClock())
    assert bucket.take() == 0.0
    assert bucket.take() == pytest.approx(2.0)


def test_bucket_refuses_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate=0, capacity=1)


def test_limiter_rounds_retry_after_up_to_whole_seconds() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=4, burst=1, keys=["a"], clock=clock)
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 1  # 0.25 s rounds up to 1
    slow = RateLimiter(rate=0.4, burst=1, keys=["a"], clock=clock)
    assert slow.retry_after("a") == 0
    assert slow.retry_after("a") == 3  # 2.5 s rounds up to 3


def test_limiter_burst_defaults_to_one_second_and_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=3, burst=0, keys=["a", "b"], clock=clock)
    assert [limiter.retry_after("a") for _ in range(4)] == [0, 0, 0, 1]
    assert limiter.retry_after("b") == 0


# --- fault settings and draws -------------------------------------------------------------


def test_settings_reject_out_of_range_values_all_at_once() -> None:
    with pytest.raises(SettingsError) as raised:
        FaultSettings(error_rate=2, latency_ms=-1, timeout_hold_s=float("nan"))
    assert len(raised.value.problems) == 3


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("rate_limit", 5e-324),
        ("rate_limit", 1e-4),
        ("rate_limit", 2e6),
        ("rate_limit", float("inf")),
        ("rate_limit_burst", float("nan")),
        ("latency_ms", 3_600_001),
        ("latency_jitter_ms", -1e-300),
        ("timeout_hold_s", 1e308),
    ],
)
def test_settings_reject_values_outside_the_knob_ranges(knob: str, value: float) -> None:
    with pytest.raises(SettingsError, match=f"{knob} must be"):
        FaultSettings(**{knob: value})
    with pytest.raises(SettingsError, match=f"{knob} must be"):
        FaultSettings().merged({knob: value})


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("rate_limit", 0),
        ("rate_limit", MIN_RATE),
        ("rate_limit", MAX_RATE),
        ("rate_limit_burst", 0.5),
        ("latency_ms", 3_600_000),
        ("timeout_hold_s", 0),
    ],
)
def test_settings_accept_the_knob_range_edges(knob: str, value: float) -> None:
    assert getattr(FaultSettings(**{knob: value}), knob) == value


def test_every_knob_has_a_range() -> None:
    assert set(KNOB_RANGES) == set(FaultSettings().as_json())


def test_slowest_allowed_rate_keeps_retry_after_finite() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=MIN_RATE, burst=0, keys=["a"], clock=clock)
    assert limiter.retry_after("a") == 0
    assert limiter.retry_after("a") == 1000


def test_settings_reject_shares_over_one_in_total() -> None:
    with pytest.raises(SettingsError, match="must not exceed 1"):
        FaultSettings(error_rate=0.5, error_500_rate=0.3, drop_rate=0.3)
    FaultSettings(error_rate=0.1, error_500_rate=0.2, timeout_rate=0.3, drop_rate=0.4)


def test_merged_is_a_partial_update() -> None:
    merged = FaultSettings(latency_ms=5).merged({"error_rate": 0.5, "timeout_hold_s": 1})
    assert merged == FaultSettings(latency_ms=5, error_rate=0.5, timeout_hold_s=1)


@pytest.mark.parametrize(
    "patch",
    [{"nope": 1}, {"error_rate": "1"}, {"error_rate": True}, {"error_rate": None}, [], "x"],
)
def test_merged_refuses_what_it_cannot_apply(patch: object) -> None:
    with pytest.raises(SettingsError):
        FaultSettings().merged(patch)


def test_plan_without_faults_or_latency_draws_nothing() -> None:
    plan = FaultPlan(FaultSettings(rate_limit=5), NoDrawRandom())
    assert not plan.has_faults
    assert not plan.has_latency
    assert plan.choose() is None
    assert plan.delay_s() == 0.0


def test_plan_fixed_latency_draws_nothing() -> None:
    plan = FaultPlan(FaultSettings(latency_ms=20), NoDrawRandom())
    assert plan.has_latency
    assert plan.delay_s() == pytest.approx(0.020)


def test_plan_jitter_stays_within_its_range() -> None:
    plan = FaultPlan(FaultSettings(latency_ms=20, latency_jitter_ms=10), random.Random(1))
    delays = [plan.delay_s() for _ in range(1000)]
    assert min(delays) >= 0.020
    assert max(delays) <= 0.030
    assert max(delays) - min(delays) > 0.008


def test_plan_follows_the_shares_with_a_seeded_rng() -> None:
    settings = FaultSettings(error_rate=0.1, error_500_rate=0.2, timeout_rate=0.05, drop_rate=0.15)
    plan = FaultPlan(settings, random.Random(42))
    counts = Counter(plan.choose() for _ in range(20_000))
    assert counts[Fault.ERROR_503] / 20_000 == pytest.approx(0.1, abs=0.01)
    assert counts[Fault.ERROR_500] / 20_000 == pytest.approx(0.2, abs=0.01)
    assert counts[Fault.TIMEOUT] / 20_000 == pytest.approx(0.05, abs=0.01)
    assert counts[Fault.DROP] / 20_000 == pytest.approx(0.15, abs=0.01)
    assert counts[None] / 20_000 == pytest.approx(0.5, abs=0.015)


def test_plan_is_reproducible_from_a_seed() -> None:
    settings = FaultSettings(error_rate=0.5, drop_rate=0.25)
    first = FaultPlan(settings, random.Random(7))
    second = FaultPlan(settings, random.Random(7))
    assert [first.choose() for _ in range(100)] == [second.choose() for _ in range(100)]


def test_plan_shares_adding_up_to_one_always_fault() -> None:
    plan = FaultPlan(
        FaultSettings(error_rate=0.1, error_500_rate=0.2, drop_rate=0.7), random.Random()
    )
    assert all(plan.choose() is not None for _ in range(5_000))


# --- auth -------------------------------------------------------------------------------


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (basic(b"user:pa:ss"), True),
        ("basic   " + base64.b64encode(b"user:pa:ss").decode(), True),
        (None, False),
        ("", False),
        ("Basic", False),
        ("Bearer token", False),
        (basic(b"user:wrong"), False),
        (basic(b"other:pa:ss"), False),
        (basic(b"userpa:ss"), False),
        (basic(b"user"), False),
        ("Basic %%%", False),
        ("Basic é", False),
    ],
)
def test_basic_auth(header: str | None, allowed: bool) -> None:
    assert BasicAuth("user", "pa:ss").allows(header) is allowed


# --- memory -------------------------------------------------------------------------------


def recorded(event_id: str) -> RecordedEvent:
    return RecordedEvent(0.0, "demo", "sent", event_id, b'{"event_id": "%s"}' % event_id.encode())


def test_event_log_keeps_the_newest_events() -> None:
    log = EventLog(max_events=2, max_event_ids=10)
    for event_id in "abc":
        log.record(recorded(event_id))
    assert [e["event_id"] for e in log.snapshot()] == ["b", "c"]
    assert log.snapshot()[0]["body"] == {"event_id": "b"}
    assert log.snapshot()[0]["received_at"] == "1970-01-01T00:00:00.000000Z"


def test_duplicate_memory_is_per_company_and_bounded() -> None:
    log = EventLog(max_events=10, max_event_ids=2)
    assert log.first_sighting("demo", "a")
    assert not log.first_sighting("demo", "a")
    assert log.first_sighting("other", "a")
    assert log.first_sighting("demo", "b")  # forgets ("demo", "a"), the oldest
    assert log.first_sighting("demo", "a")
    assert not log.first_sighting("demo", "b")


def test_zero_sized_memories_keep_nothing() -> None:
    log = EventLog(max_events=0, max_event_ids=0)
    assert log.first_sighting("demo", "a")
    assert log.first_sighting("demo", "a")
    log.record(recorded("a"))
    assert log.snapshot() == []


def test_clear_forgets_events_and_ids() -> None:
    log = EventLog(max_events=10, max_event_ids=10)
    log.first_sighting("demo", "a")
    log.record(recorded("a"))
    log.clear()
    assert len(log) == 0
    assert log.first_sighting("demo", "a")


def test_stats_as_json_are_integers() -> None:
    counts = Stats(received=3, sent=2, faults=1, faults_503=1).as_json()
    assert counts["received"] == 3
    assert all(isinstance(value, int) for value in counts.values())


def test_serve_in_process_without_signal_handlers() -> None:
    """Embedding: another thread's loop, stopped by an event instead of a signal."""
    sock = bind("127.0.0.1", 0)
    urls: list[str] = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def on_listening(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=loop.run_until_complete,
        args=(serve(SimConfig(), sock, on_listening, stop, handle_signals=False),),
    )
    thread.start()
    try:
        assert ready.wait(10)
        assert httpx.get(f"{urls[0]}/_sim/health", timeout=10).json() == {"status": "ok"}
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()
    assert not thread.is_alive()


# --- a request that fails inside the simulator ----------------------------------------------


class FailingClock(FakeClock):
    """Works while the limiter is built, then fails: an exception deep in the hot path."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    def __call__(self) -> float:
        if self.broken:
            raise RuntimeError("clock broke: person-1 S3cr3t")
        return self.now


def test_exception_in_the_events_handler_is_an_enveloped_500_counted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FailingClock()
    simulator = Simulator(SimConfig(faults=FaultSettings(rate_limit=10)), clock=clock)
    clock.broken = True
    request = make_mocked_request(
        "POST",
        "/companies/demo/events",
        headers={"Authorization": basic_auth_header("demo", "demo")},
        match_info={"company_key": "demo"},
    )
    response = asyncio.run(simulator.post_event(request))
    assert isinstance(response, web.Response)
    assert response.status == 500
    assert isinstance(response.body, bytes)
    assert orjson.loads(response.body) == {
        "errors": [{"message": "internal error in the simulator", "code": 500}]
    }
    assert simulator.stats.as_json()["received"] == 1
    assert simulator.stats.as_json()["internal_errors"] == 1
    assert "RuntimeError" in caplog.text
    assert "S3cr3t" not in caplog.text
    assert "person-1" not in caplog.text
