"""The deliverer: retries, rate limits and the credentials gate, on httpx.MockTransport."""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bridge.config.model import VibesSettings
from bridge.delivery import CredentialsSource, Delivered
from bridge.errors import EventExpired, EventRejected, RetryReason
from bridge.vibes.api import basic_auth_header, error_envelope
from tests.delivery.helpers import Rig, json_answer, mapped, rig
from tests.delivery.virtual_time import VirtualTime

START = VirtualTime().now


def scripted(*statuses: int, max_retry_duration: float | None = None) -> tuple[list[float], Rig]:
    """A rig whose server answers ``statuses`` in turn (then 200); the times it was called."""
    time = VirtualTime()
    calls: list[float] = []
    remaining = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(time.now - START)
        status = remaining.pop(0) if remaining else 200
        messages = error_envelope(status, ["nope"]) if status >= 400 else None
        return json_answer(status, messages)

    return calls, rig(handler, time=time, max_retry_duration=max_retry_duration)


def flaky_credentials(works_from: float) -> tuple[list[float], Rig]:
    """401 until virtual ``works_from`` seconds, 200 after, with 50 ms of latency."""
    time = VirtualTime()
    calls: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        now = time.now - START
        calls.append(now)
        await time.sleep(0.05)  # latency: concurrent deliveries overlap
        return json_answer(200 if now >= works_from else 401)

    return calls, rig(handler, time=time, credentials_retry_seconds=15.0)


def deliver(r: Rig, count: int = 1) -> list[Delivered]:
    async def scenario() -> list[Delivered]:
        return list(
            await asyncio.gather(*(r.deliverer.deliver(mapped(f"e-{i}")) for i in range(count)))
        )

    return asyncio.run(r.time.run(scenario()))


def test_a_200_is_delivered_in_one_attempt_with_the_api_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer(200, {"event_id": "e-0"})

    r = rig(handler)
    assert deliver(r) == [Delivered(status=200, attempts=1)]
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://vibes.test/companies/demo/events"
    assert request.headers["X-API-Version"] == "2"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == basic_auth_header("user", "secret-pass")
    assert request.content == mapped("e-0").body
    assert r.observer.statuses == [200]
    assert (r.observer.in_flight, r.observer.most_in_flight) == (0, 1)


def test_a_company_key_is_escaped_in_the_path() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return json_answer(200)

    r = rig(handler)
    asyncio.run(r.time.run(r.deliverer.deliver(mapped(company_key="a/b c"))))
    assert seen == ["/companies/a%2Fb%20c/events"]


def test_409_means_vibes_already_has_it() -> None:
    calls, r = scripted(409)
    assert deliver(r) == [Delivered(status=409, attempts=1)]
    assert calls == [0.0]
    assert not r.observer.retries


def test_5xx_and_timeouts_are_retried_with_growing_jittered_backoff() -> None:
    calls: list[float] = []
    script: list[int | type[httpx.TransportError]] = [
        503,
        httpx.ReadTimeout,
        500,
        httpx.ConnectError,
        200,
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(r.time.now - START)
        step = script.pop(0)
        if isinstance(step, int):
            return json_answer(step)
        raise step("simulated", request=request)

    r = rig(handler)
    assert deliver(r) == [Delivered(status=200, attempts=5)]
    assert r.observer.statuses == [503, None, 500, None, 200]
    assert r.observer.retries == {
        RetryReason.STATUS_5XX: 2,
        RetryReason.TIMEOUT: 1,
        RetryReason.CONNECTION: 1,
    }
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert all(0 <= gap <= ceiling + 1e-6 for gap, ceiling in zip(gaps, ceilings, strict=True)), (
        gaps
    )


def test_429_honours_retry_after_and_holds_the_whole_key() -> None:
    sent: dict[str, list[float]] = {"e-0": [], "e-1": []}
    first = True

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal first
        event_id = request.content.decode().split('"event_id":"')[1].split('"')[0]
        sent[event_id].append(r.time.now - START)
        if first:
            first = False
            return json_answer(429, error_envelope(429, ["slow down"]), {"Retry-After": "3"})
        return json_answer(200)

    r = rig(handler, rate=10.0)
    assert deliver(r, 2) == [Delivered(200, 2), Delivered(200, 1)]
    # e-0 got the 429 at 0; e-1 had a slot at 0.1, voided by the hold: both wait for 3.0
    assert sent["e-0"] == pytest.approx([0.0, 3.0]) or sent["e-0"] == pytest.approx([0.0, 3.1])
    assert min(sent["e-1"]) >= 3.0
    assert r.observer.retries == {RetryReason.STATUS_429: 1}


def test_429_without_retry_after_backs_off_the_key() -> None:
    calls, r = scripted(429, 429)
    assert deliver(r) == [Delivered(200, 3)]
    assert calls[1] > calls[0]
    assert calls[2] > calls[1]


def test_a_non_retryable_4xx_raises_rejected_with_vibes_messages() -> None:
    _, r = scripted(503, 422)
    with pytest.raises(EventRejected) as raised:
        deliver(r)
    assert (raised.value.status, raised.value.response, raised.value.attempts) == (422, "nope", 2)


def test_max_retry_duration_expires_an_event_that_keeps_failing() -> None:
    calls, r = scripted(*[503] * 1000, max_retry_duration=60.0)
    with pytest.raises(EventExpired) as raised:
        deliver(r)
    assert raised.value.code == "max_retry_duration"
    assert raised.value.attempts == len(calls) > 3
    assert calls[-1] <= 60.0
    assert "status_5xx" in raised.value.message


def test_without_max_retry_duration_an_outage_is_waited_out() -> None:
    calls, r = scripted(*[503] * 40)
    assert deliver(r) == [Delivered(200, 41)]
    assert calls[-1] > 300  # backoff reached its 30 s cap and kept going


# ----------------------------------------------------------------- credentials


def test_401_pauses_everyone_probes_slowly_and_resumes(caplog: pytest.LogCaptureFixture) -> None:
    calls, r = flaky_credentials(works_from=20.0)
    failing_seen: list[bool] = []

    async def scenario() -> list[Delivered]:
        deliveries = asyncio.gather(*(r.deliverer.deliver(mapped(f"e-{i}")) for i in range(5)))
        await r.time.sleep(1.0)
        failing_seen.append(r.deliverer.credentials_rejected)
        return list(await deliveries)

    with caplog.at_level(logging.DEBUG, logger="bridge.delivery"):
        results = asyncio.run(r.time.run(scenario()))
    assert failing_seen == [True]
    assert not r.deliverer.credentials_rejected
    assert [result.status for result in results] == [200] * 5
    # five first attempts at 0, one probe at 15 (still 401), one at 30 (works), then the rest
    assert calls[:5] == pytest.approx([0.0, 0.001, 0.002, 0.003, 0.004])
    assert calls[5:7] == pytest.approx([15.05, 30.1])  # after the 401 answers, 15 s apart
    assert len(calls) == 11
    assert r.observer.credentials == [True, False]
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "credentials" in errors[0].getMessage()
    assert "attempt 1 for shop.shipments[0]@7" in caplog.text  # per-attempt lines at debug
    assert "e-1" not in caplog.text  # event ids may be built from person data
    assert "person-1" not in caplog.text
    assert "secret-pass" not in caplog.text
    assert basic_auth_header("user", "secret-pass") not in caplog.text


def test_a_cancelled_prober_hands_probing_to_a_waiter() -> None:
    calls, r = flaky_credentials(works_from=40.0)

    async def scenario() -> Delivered:
        first = asyncio.ensure_future(r.deliverer.deliver(mapped("e-0")))
        await r.time.sleep(1.0)  # e-0 got 401 and is now the prober, sleeping until 15
        second = asyncio.ensure_future(r.deliverer.deliver(mapped("e-1")))
        await r.time.sleep(1.0)
        first.cancel()  # shutdown or revocation
        with pytest.raises(asyncio.CancelledError):
            await first
        return await second

    assert asyncio.run(r.time.run(scenario())) == Delivered(200, 3)
    # e-1 took over at once when e-0 was cancelled at 2: probes at 17, 32.05 and 47.1
    assert calls == pytest.approx([0.0, 17.0, 32.05, 47.1])
    assert r.observer.in_flight == 0


def test_time_behind_the_credentials_gate_is_not_retry_time() -> None:
    script = iter([401, 401, 401, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return json_answer(next(script))

    r = rig(handler, max_retry_duration=10.0, credentials_retry_seconds=15.0)
    assert deliver(r) == [Delivered(200, 5)]  # 30 s paused, yet not expired


def test_rotated_password_file_ends_the_pause(tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "password"
    secret.parent.mkdir()
    secret.write_text("old-pass\n")
    settings = VibesSettings(
        company_key="demo", username=SecretStr("user"), password_file="secrets/password"
    )
    credentials = CredentialsSource.from_settings(settings, tmp_path / "bridge.yaml")
    good = basic_auth_header("user", "new-pass")

    def handler(request: httpx.Request) -> httpx.Response:
        return json_answer(200 if request.headers["Authorization"] == good else 401)

    r = rig(handler, credentials=credentials, credentials_retry_seconds=15.0)

    async def scenario() -> Delivered:
        delivery = asyncio.ensure_future(r.deliverer.deliver(mapped()))
        await r.time.sleep(5.0)
        assert r.deliverer.credentials_rejected
        replacement = secret.with_name("password.new")
        replacement.write_text("new-pass\n")
        replacement.replace(secret)  # a new inode, as a swapped Kubernetes symlink gives
        return await delivery

    assert asyncio.run(r.time.run(scenario())) == Delivered(200, 2)
    assert r.observer.credentials == [True, False]


def test_cancellation_during_backoff_propagates_and_balances_in_flight() -> None:
    calls, r = scripted(*[503] * 100)

    async def scenario() -> None:
        delivery = asyncio.ensure_future(r.deliverer.deliver(mapped()))
        await r.time.sleep(5.0)
        delivery.cancel()
        with pytest.raises(asyncio.CancelledError):
            await delivery

    asyncio.run(r.time.run(scenario()))
    assert r.observer.in_flight == 0
    assert len(calls) > 1


def test_delivered_says_when_the_first_attempt_started_and_when_vibes_accepted() -> None:
    calls, r = scripted(503, 503)
    [delivered] = deliver(r)
    assert delivered.attempts == 3
    # The rig's wall clock is its virtual clock: the receipt's times are the attempts'.
    assert delivered.first_attempt_ms == int((START + calls[0]) * 1000)
    assert delivered.accepted_ms is not None
    assert delivered.accepted_ms >= int((START + calls[-1]) * 1000)
    assert delivered.accepted_ms - delivered.first_attempt_ms >= int((calls[-1] - calls[0]) * 1000)
