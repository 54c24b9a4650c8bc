"""Every attempt ends within its deadline, and no answer is read past its cap.

Against a hostile server on 127.0.0.1 (tests/support/hostile_http.py) that
trickles, stalls or floods: each variant must end within a bound that the
server alone would never grant, classified the way the deliverer acts on.
Bounds are generous (a loaded machine), yet far below what the server would
hold an unbounded client for (hours).
"""

from __future__ import annotations

import asyncio
import random
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc

import httpx
import pytest

from bridge.bounded_http import BlockingHttp, LoopThread
from bridge.delivery import (
    Backoff,
    CredentialsSource,
    Deliverer,
    NullObserver,
    RateLimiter,
    VibesClient,
)
from bridge.delivery.callback_api import CallbackApi, CallbackApiError
from bridge.delivery.outcomes import Delivered, DeliveryUnavailable, Outcome, Rejected
from bridge.delivery.transport import TransportKind, build_transport
from bridge.errors import EventExpired, RetryReason
from bridge.vibes.api import RESPONSE_BODY_LIMIT
from tests.delivery.helpers import mapped
from tests.support.hostile_http import HostileServer, Misbehaviour, hostile_server
from tests.support.paths import ROOT
from tests.support.waiting import wait_until

DEADLINE_S = 0.5
# What "ends within the bound" means on a loaded machine: the deadline plus room
# for scheduling; the hostile server alone would hold the client for hours.
BOUND_S = 10.0
STALLS = [Misbehaviour.TRICKLE_BODY, Misbehaviour.NO_HEADERS, Misbehaviour.TRICKLE_HEADERS]
TRANSPORTS = [TransportKind.AIOHTTP, TransportKind.HTTPCORE]
ENVELOPE = b'{"errors": [{"message": "too big", "code": 400}]}'


def _client(server: HostileServer, kind: TransportKind) -> VibesClient:
    return VibesClient(
        base_url=server.url,
        api_version="2",
        timeout_seconds=DEADLINE_S,
        credentials=CredentialsSource.fixed("user", "secret-pass"),
        transport=build_transport(kind),
    )


def _post(server: HostileServer, kind: TransportKind, posts: int = 1) -> list[object]:
    async def scenario() -> list[object]:
        client = _client(server, kind)
        try:
            return [await client.post_event("demo", b"{}") for _ in range(posts)]
        finally:
            await client.aclose()

    return asyncio.run(scenario())


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize("misbehaviour", STALLS)
def test_a_stalled_answer_is_a_timeout_within_the_deadline(
    misbehaviour: Misbehaviour, kind: TransportKind
) -> None:
    with hostile_server(misbehaviour) as server:
        started = time.monotonic()
        [outcome] = _post(server, kind)
        elapsed = time.monotonic() - started
    assert outcome == DeliveryUnavailable(RetryReason.TIMEOUT)
    assert elapsed < BOUND_S


@pytest.mark.parametrize("kind", TRANSPORTS)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Delivered(200, 1)),
        (202, Delivered(202, 1)),
        (400, Rejected(400, "too big")),
        (503, DeliveryUnavailable(RetryReason.STATUS_5XX, status=503)),
    ],
)
def test_a_huge_answer_is_cut_and_classified_by_its_status(
    status: int, expected: Outcome, kind: TransportKind
) -> None:
    with hostile_server(Misbehaviour.HUGE_BODY, status=status, body_head=ENVELOPE) as server:
        outcomes = _post(server, kind, posts=2)
        assert server.bytes_sent < server.body_size // 2  # the rest was never read
        assert server.connections == 2  # a cut answer's connection is closed, not reused
    assert outcomes == [expected, expected]  # plain values: compared by their fields


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_a_200_mb_answer_costs_no_more_memory_than_the_cap(kind: TransportKind) -> None:
    with hostile_server(Misbehaviour.HUGE_BODY, body_size=200 * 1024 * 1024) as server:
        tracemalloc.start()
        try:
            [outcome] = _post(server, kind)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert outcome == Delivered(200, 1)
    assert peak < 4 * 1024 * 1024  # the cap is 64 KiB; the rest is the client's own objects
    assert RESPONSE_BODY_LIMIT == 64 * 1024


@pytest.mark.parametrize("misbehaviour", STALLS)
def test_the_deliverer_expires_an_event_whose_attempts_time_out(
    misbehaviour: Misbehaviour,
) -> None:
    """The deadline is a transient timeout, so max_retry_duration applies to it."""

    async def scenario(server: HostileServer) -> None:
        client = _client(server, TransportKind.AIOHTTP)
        deliverer = Deliverer(
            client,
            RateLimiter(1000.0),
            observer=NullObserver(),
            max_retry_duration=1.0,
            backoff=Backoff(initial=0.05, cap=0.1, rng=random.Random(3)),
        )
        try:
            await deliverer.deliver(mapped("e-1"))
        finally:
            await client.aclose()

    with hostile_server(misbehaviour) as server, pytest.raises(EventExpired) as raised:
        asyncio.run(scenario(server))
    assert raised.value.code == "max_retry_duration"
    assert "timeout" in raised.value.message
    assert raised.value.attempts >= 2


# ---------------------------------------------------------------- the Callback API


def _callback_api(server: HostileServer, body_limit: int = 1024 * 1024) -> CallbackApi:
    return CallbackApi.connect(
        base_url=server.url,
        company_key="demo",
        authorization="Basic c2VjcmV0",
        api_version="2",
        timeout_seconds=DEADLINE_S,
        body_limit=body_limit,
    )


@pytest.mark.parametrize("misbehaviour", STALLS)
def test_the_callback_api_gives_up_at_its_deadline(misbehaviour: Misbehaviour) -> None:
    with hostile_server(misbehaviour) as server:
        api = _callback_api(server)
        started = time.monotonic()
        try:
            with pytest.raises(CallbackApiError, match=r"did not answer within 0.5 s"):
                api.list()
        finally:
            api.close()
        assert time.monotonic() - started < BOUND_S


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (200, r"answered more than 1048576 bytes"),
        (400, r"HTTP 400: refused: too big"),
        (404, r"HTTP 404: not found"),
    ],
)
def test_the_callback_api_cuts_a_huge_answer(status: int, message: str) -> None:
    with hostile_server(Misbehaviour.HUGE_BODY, status=status, body_head=ENVELOPE) as server:
        api = _callback_api(server)
        try:
            with pytest.raises(CallbackApiError, match=message):
                api.list()
        finally:
            api.close()
        assert server.bytes_sent < server.body_size // 2


def test_the_callback_api_messages_carry_no_credentials() -> None:
    with hostile_server(Misbehaviour.NO_HEADERS) as server:
        api = _callback_api(server)
        try:
            with pytest.raises(CallbackApiError) as raised:
                api.list()
        finally:
            api.close()
    assert "c2VjcmV0" not in str(raised.value)
    assert server.url not in str(raised.value)


def test_the_vibes_client_asks_for_an_uncompressed_answer() -> None:
    """A compressed body could unpack to far more than the cap in one chunk."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return httpx.Response(202)

    async def scenario() -> object:
        client = VibesClient(
            base_url="https://vibes.test",
            api_version="2",
            timeout_seconds=DEADLINE_S,
            credentials=CredentialsSource.fixed("user", "secret-pass"),
            transport=httpx.MockTransport(handler),
        )
        return await client.post_event("demo", b"{}")

    assert asyncio.run(scenario()) == Delivered(202, 1)
    assert seen == ["identity"]


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert certificate required"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_the_callback_api_reports_an_os_error_below_httpx(error: OSError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://vibes.test")
    api = CallbackApi(BlockingHttp(http), "demo", DEADLINE_S)
    try:
        with pytest.raises(CallbackApiError, match="cannot reach the Callback API"):
            api.list()
    finally:
        api.close()


# --- the synchronous client's loop thread never holds up the process's exit ---------------

_UNCLOSED_CLIENT = """
import httpx
from bridge.bounded_http import BlockingHttp, LoopThread

{setup}
print("built", flush=True)
"""


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param("client = BlockingHttp(httpx.AsyncClient())", id="never-closed"),
        pytest.param(
            "class Holder: pass\n"
            "holder = Holder(); holder.me = holder\n"
            "holder.client = BlockingHttp(httpx.AsyncClient())\n"
            "del holder",
            id="dropped-in-a-cycle",
        ),
        pytest.param(
            "clients = [BlockingHttp(httpx.AsyncClient()) for _ in range(3)]\n"
            "clients[0].close(); clients[0].close()",
            id="some-closed-twice",
        ),
    ],
)
def test_a_client_never_closed_does_not_keep_the_process_alive(setup: str) -> None:
    # The anyio portal it replaced stopped from a generator's finally at exit and
    # waited for ever on a loop that had gone: CI passed every test, then hung.
    script = _UNCLOSED_CLIENT.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "built\n"


def test_a_closed_client_refuses_requests_and_its_thread_ends() -> None:
    before = set(threading.enumerate())
    http = BlockingHttp(httpx.AsyncClient())
    (loop_thread,) = [t for t in threading.enumerate() if t not in before]
    assert loop_thread.name == "bridge-http"
    assert loop_thread.daemon
    http.close()
    wait_until(lambda: not loop_thread.is_alive(), 10, "the loop thread to end")
    with pytest.raises(RuntimeError, match="closed"):
        http.request("GET", "http://127.0.0.1:9/", deadline_seconds=1, limit=10)


def test_a_call_caught_by_stop_ends_instead_of_waiting_for_ever() -> None:
    # A call in flight when the loop stops was never answered, and its caller
    # waited for ever (the loop that would have finished it had gone).
    loop_thread = LoopThread("bridge-http-test")
    started = threading.Event()
    outcome: list[BaseException | None] = []

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    def call() -> None:
        try:
            loop_thread.run(forever())
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    assert started.wait(10)
    loop_thread.stop()
    caller.join(30)
    assert not caller.is_alive(), "the caller still waits on a stopped loop"
    assert isinstance(outcome[0], RuntimeError)
    with pytest.raises(RuntimeError, match="stopped"):
        loop_thread.run(forever())
