"""Latency, rate limiting and injected faults, switched at run time over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.support.simulator import DEFAULT_FAULTS, SimProcess, assert_envelope, event, stats
from tests.support.waiting import wait_until


def set_faults(sim: SimProcess, **knobs: Any) -> httpx.Response:
    return httpx.post(f"{sim.url}/_sim/faults", json=knobs, timeout=10)


def test_get_faults_answers_every_knob(sim: SimProcess) -> None:
    response = httpx.get(f"{sim.url}/_sim/faults", timeout=10)
    assert response.status_code == 200
    assert response.json() == DEFAULT_FAULTS


def test_partial_update_answers_the_full_settings(sim: SimProcess) -> None:
    response = set_faults(sim, latency_ms=5, error_rate=0.25)
    assert response.status_code == 200
    assert response.json() == {**DEFAULT_FAULTS, "latency_ms": 5, "error_rate": 0.25}
    again = set_faults(sim, drop_rate=0.1)
    assert again.json() == {**DEFAULT_FAULTS, "latency_ms": 5, "error_rate": 0.25, "drop_rate": 0.1}


@pytest.mark.parametrize(
    "patch",
    [
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"error_rate": "0.5"},
        {"drop_rate": True},
        {"no_such_knob": 1},
        {"error_rate": 0.6, "drop_rate": 0.6},
        [1, 2],
        {"rate_limit": 5e-324},
        {"rate_limit": 1e-10},
        {"rate_limit": 0.0009},
        {"rate_limit": 1e300},
        {"rate_limit_burst": 1e300},
        {"latency_ms": 1e300},
        {"latency_jitter_ms": 3_600_001},
        {"timeout_hold_s": 1e10},
    ],
    ids=[
        "share-over-1",
        "negative",
        "string",
        "bool",
        "unknown",
        "sum-over-1",
        "not-object",
        "denormal-rate",
        "tiny-rate",
        "rate-just-below-minimum",
        "huge-rate",
        "huge-burst",
        "huge-latency",
        "jitter-over-an-hour",
        "huge-hold",
    ],
)
def test_invalid_fault_updates_are_refused_and_change_nothing(sim: SimProcess, patch: Any) -> None:
    response = httpx.post(f"{sim.url}/_sim/faults", json=patch, timeout=10)
    assert_envelope(response, 400)
    assert httpx.get(f"{sim.url}/_sim/faults", timeout=10).json() == DEFAULT_FAULTS


def test_slowest_rate_limit_answers_429_and_the_counters_add_up(
    sim: SimProcess, client: httpx.Client
) -> None:
    assert set_faults(sim, rate_limit=0.001).status_code == 200
    statuses = [sim.post_event(client, event(f"slow-{n}")).status_code for n in range(3)]
    assert statuses == [200, 429, 429]
    refused = sim.post_event(client, event("slow-3"))
    assert 1 <= int(refused.headers["retry-after"]) <= 1000
    counts = stats(sim)
    assert counts["rate_limited"] == 3
    assert counts["received"] == counts["sent"] + counts["rate_limited"]


def test_fault_update_that_is_not_json_gets_400(sim: SimProcess) -> None:
    response = httpx.post(f"{sim.url}/_sim/faults", content=b"error_rate=1", timeout=10)
    assert_envelope(response, 400)


def test_error_rate_switched_on_and_off_at_run_time(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, error_rate=1.0).raise_for_status()
    for _ in range(3):
        assert_envelope(sim.post_event(client, event("e-503")), 503)
    set_faults(sim, error_rate=0).raise_for_status()
    assert sim.post_event(client, event("e-503")).status_code == 200
    counts = stats(sim)
    assert (counts["faults"], counts["faults_503"], counts["sent"]) == (3, 3, 1)


def test_error_500_rate(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, error_500_rate=1.0).raise_for_status()
    assert_envelope(sim.post_event(client, event("e-500")), 500)
    assert stats(sim)["faults_500"] == 1


def test_faults_come_before_auth(sim: SimProcess) -> None:
    """An outage answers everyone the same way, signed in or not."""
    set_faults(sim, error_rate=1.0).raise_for_status()
    response = httpx.post(f"{sim.url}/companies/demo/events", json=event(), timeout=10)
    assert_envelope(response, 503)


def test_timeout_fault_holds_the_request_past_the_client_timeout(
    sim: SimProcess, client: httpx.Client
) -> None:
    set_faults(sim, timeout_rate=1.0, timeout_hold_s=30).raise_for_status()
    with httpx.Client(base_url=sim.url, auth=("demo", "demo"), timeout=0.5) as impatient:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            sim.post_event(impatient, event("held"))
        assert time.monotonic() - started >= 0.5
    set_faults(sim, timeout_rate=0).raise_for_status()
    assert sim.post_event(client, event("after-hold")).status_code == 200
    assert stats(sim)["faults_timeout"] == 1


def test_timeout_fault_ends_with_504_after_the_hold(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, timeout_rate=1.0, timeout_hold_s=0.2).raise_for_status()
    started = time.monotonic()
    assert_envelope(sim.post_event(client, event("held-short")), 504)
    assert time.monotonic() - started >= 0.2


def test_drop_fault_closes_the_connection_without_an_answer(
    sim: SimProcess, client: httpx.Client
) -> None:
    set_faults(sim, drop_rate=1.0).raise_for_status()
    with pytest.raises(httpx.TransportError) as raised:
        sim.post_event(client, event("dropped"))
    assert not isinstance(raised.value, httpx.TimeoutException)
    set_faults(sim, drop_rate=0).raise_for_status()
    assert sim.post_event(client, event("after-drop")).status_code == 200
    counts = stats(sim)
    assert (counts["faults_drop"], counts["sent"]) == (1, 1)


def test_latency_delays_the_answer(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, latency_ms=150, latency_jitter_ms=50).raise_for_status()
    started = time.monotonic()
    assert sim.post_event(client, event("slow")).status_code == 200
    assert time.monotonic() - started >= 0.15


def test_rate_limit_at_run_time_answers_429_with_retry_after(
    sim: SimProcess, client: httpx.Client
) -> None:
    set_faults(sim, rate_limit=1, rate_limit_burst=2).raise_for_status()
    statuses = []
    limited: list[httpx.Response] = []
    for i in range(8):
        response = sim.post_event(client, event(f"rl-{i}"))
        statuses.append(response.status_code)
        if response.status_code == 429:
            limited.append(response)
    assert statuses[:2] == [200, 200]
    assert limited, statuses
    for response in limited:
        assert_envelope(response, 429)
        assert int(response.headers["retry-after"]) >= 1
    assert stats(sim)["rate_limited"] == len(limited)


def test_rate_limit_is_per_company(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, rate_limit=0.1, rate_limit_burst=1).raise_for_status()
    assert sim.post_event(client, event("a")).status_code == 200
    assert sim.post_event(client, event("b")).status_code == 429
    assert sim.post_event(client, event("c"), company_key="other").status_code == 200


def test_mixed_faults_follow_their_shares(sim: SimProcess, client: httpx.Client) -> None:
    set_faults(sim, error_rate=0.3, error_500_rate=0.3).raise_for_status()
    codes = [sim.post_event(client, event(f"mix-{i}")).status_code for i in range(200)]
    assert set(codes) <= {200, 500, 503}
    assert codes.count(500) > 20
    assert codes.count(503) > 20
    assert codes.count(200) > 20
    counts = stats(sim)
    assert counts["faults"] == counts["faults_500"] + counts["faults_503"]
    assert counts["received"] == 200


def test_failing_events_answer_503_for_matching_ids_only_until_cleared(
    sim: SimProcess, client: httpx.Client
) -> None:
    answer = httpx.post(f"{sim.url}/_sim/failing", json={"event_id_pattern": "^stuck-"}, timeout=10)
    assert answer.json() == {"event_id_pattern": "^stuck-", "seconds_left": None}
    for _attempt in range(3):  # every time, not at random
        assert_envelope(sim.post_event(client, event("stuck-1")), 503)
    assert sim.post_event(client, event("fine-stuck-1")).status_code == 200
    counts = stats(sim)
    assert (counts["faults"], counts["faults_targeted"], counts["sent"]) == (3, 3, 1)
    assert counts["faults_503"] == 0  # the random 503 share is a different counter
    cleared = httpx.delete(f"{sim.url}/_sim/failing", timeout=10)
    assert cleared.json() == {"event_id_pattern": None, "seconds_left": None}
    assert sim.post_event(client, event("stuck-1")).status_code == 200


def test_failing_events_lapse_after_their_seconds(sim: SimProcess, client: httpx.Client) -> None:
    started = time.monotonic()  # before the POST: the simulator's deadline is later still
    httpx.post(
        f"{sim.url}/_sim/failing", json={"event_id_pattern": "x$", "seconds": 1.0}, timeout=10
    ).raise_for_status()
    wait_until(lambda: sim.post_event(client, event("box")).status_code == 200, 10, "the lapse")
    assert time.monotonic() - started >= 1.0  # the simulator's clock is the same monotonic one
    assert httpx.get(f"{sim.url}/_sim/failing", timeout=10).json()["event_id_pattern"] is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"event_id_pattern": ""},
        {"event_id_pattern": "("},
        {"event_id_pattern": 7},
        {"event_id_pattern": "a" * 257},
        {"event_id_pattern": "a", "seconds": 0},
        {"event_id_pattern": "a", "seconds": "5"},
        {"event_id_pattern": "a", "seconds": True},
        {"event_id_pattern": "a", "extra": 1},
        [],
    ],
)
def test_failing_events_refuse_bad_settings(sim: SimProcess, body: object) -> None:
    answer = httpx.post(f"{sim.url}/_sim/failing", json=body, timeout=10)
    assert_envelope(answer, 400)
    assert httpx.get(f"{sim.url}/_sim/failing", timeout=10).json()["event_id_pattern"] is None
