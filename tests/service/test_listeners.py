"""The bridge's two listeners under hostile clients, over raw sockets, in-process.

Both listeners (the callback receiver and the management port) share
``bridge.service.listener``; every scenario runs against both. The requests
carry a callback token, Basic credentials and a phone number found nowhere
else, so any echo of their bytes shows up in the answer or in the captured
log records (all loggers, DEBUG and up, tracebacks included).

No record reaches Kafka in these scenarios (each asserts it): the receiver is
given a sink that only records what it was handed, so no broker is involved.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bridge.config.model import CallbackSettings
from bridge.dead_letters import Headers
from bridge.metrics import BridgeMetrics
from bridge.service.callback_receiver import CallbackReceiver
from bridge.service.health import Health
from bridge.service.listener import ListenerBounds
from bridge.service.management import ManagementServer

TOKEN = "tok-7f3e9c1d5b2a4860e2"
PASSWORD = "Pw-listener-51d2ab"
BASIC = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
PHONE = "+15551234567"
SECRETS = (TOKEN, PASSWORD, BASIC, PHONE, PHONE[1:])
PATH = f"/vibes/callbacks/{TOKEN}".encode()
AUTH = f"Authorization: Basic {BASIC}\r\n".encode()
HOST = b"Host: 127.0.0.1\r\n"
LINE = b"POST " + PATH + b" HTTP/1.1\r\n" + HOST
KINDS = ("callbacks", "management")
FAST = ListenerBounds(max_connections=3, head_timeout_seconds=1.0, body_timeout_seconds=1.0)
IO_BOUND_S = 20.0
FIXED_400 = b'{"error": "bad request"}'

MALFORMED = {
    "not-http": b"\x00\x01 NOT HTTP " + PATH + b"\r\n" + AUTH + b"\r\n",
    "bad-method": b"P\x01ST " + PATH + b" HTTP/1.1\r\n" + AUTH + b"\r\n",
    "bad-version": b"POST " + PATH + b" HTTP/9.Z\r\n" + AUTH + b"\r\n",
    "non-utf8-path": b"POST " + PATH + b"\xff\xfe/" + PHONE.encode() + b" HTTP/1.1\r\n\r\n",
    "control-char-in-authorization": LINE + AUTH[:-2] + b"\x01\r\n\r\n",
    "credentials-in-header-name": LINE + f"X-{BASIC}(): 1\r\n".encode() + AUTH + b"\r\n",
    "header-too-long": LINE + AUTH + b"X-Phone: " + PHONE.encode() * 500 + b"\r\n\r\n",
    "request-line-too-long": b"POST " + PATH + b"?p=" + PHONE.encode() * 500 + b" HTTP/1.1\r\n\r\n",
    "too-many-headers": LINE
    + b"".join(f"X-{n}: {PHONE}\r\n".encode() for n in range(100))
    + b"\r\n",
    "letters-in-content-length": LINE + AUTH + b"Content-Length: abc\r\n\r\n",
    "content-length-and-chunked": LINE
    + AUTH
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "bad-chunk-size": LINE
    + AUTH
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    + PHONE.encode()
    + b"\r\n",
}


@dataclass
class RecordingSink:
    """Where the receiver's records would go; these scenarios must produce none."""

    produced: list[tuple[str, bytes | None, bytes, Headers]] = field(default_factory=list)

    def produce(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> asyncio.Future[None]:
        self.produced.append((topic, key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


@dataclass
class Listener:
    kind: str
    port: int
    metrics: BridgeMetrics
    sink: RecordingSink

    def malformed(self) -> float:
        name, labels = (
            ("vibes_bridge_callback_requests_total", {"answer": "malformed"})
            if self.kind == "callbacks"
            else ("vibes_bridge_management_requests_total", {"answer": "malformed"})
        )
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def refused(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "vibes_bridge_listener_connections_refused_total",
            {"listener": self.kind, "reason": reason},
        )
        return value or 0.0

    def answers(self, answer: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "vibes_bridge_callback_requests_total", {"answer": answer}
        )
        return value or 0.0


@contextlib.asynccontextmanager
async def running(
    kind: str,
    bounds: ListenerBounds = FAST,
    tls: ssl.SSLContext | None = None,
    **settings: Any,
) -> AsyncIterator[Listener]:
    metrics, sink = BridgeMetrics(), RecordingSink()
    server: CallbackReceiver | ManagementServer
    if kind == "callbacks":
        config = CallbackSettings.model_validate(
            {
                "host": "127.0.0.1",
                "port": 0,
                "token": TOKEN,
                "allow_from": ["127.0.0.1/32"],
                **settings,
            }
        )
        server = CallbackReceiver(
            config, TOKEN, sink, metrics, dead_letter_topic="unused", tls=tls, bounds=bounds
        )
        _host, port = await server.start()
    else:
        server = ManagementServer(metrics, Health(), bounds)
        _host, port = await server.start("127.0.0.1", 0)
    try:
        yield Listener(kind, port, metrics, sink)
    finally:
        await server.stop()
    assert sink.produced == []


def run(kind: str, scenario: Callable[[Listener], Awaitable[None]], **settings: Any) -> None:
    async def main() -> None:
        async with running(kind, **settings) as listener:
            await scenario(listener)

    asyncio.run(main())


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    """Everything the listener sends until it closes the connection (bounded)."""
    async with asyncio.timeout(IO_BOUND_S):
        return await reader.read()


async def exchange(listener: Listener, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await read_to_end(reader)
    finally:
        writer.close()


async def one_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Send a small well-formed request on a kept-alive connection; its status line."""
    writer.write(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
    await writer.drain()
    async with asyncio.timeout(IO_BOUND_S):
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
    return head.split(b"\r\n", 1)[0]


def assert_nothing_leaked(answer: bytes, caplog: pytest.LogCaptureFixture) -> None:
    formatter = logging.Formatter()
    for secret in SECRETS:
        assert secret.encode() not in answer, "the answer echoed the request"
    for record in caplog.records:
        assert record.exc_info is None, f"a traceback was logged: {record.getMessage()}"
        text = formatter.format(record) + repr(vars(record))
        for secret in SECRETS:
            assert secret not in text, f"a log line held request bytes: {record.getMessage()}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_gets_a_fixed_answer_is_counted_and_never_echoed(
    kind: str, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(listener: Listener) -> None:
        answer = await exchange(listener, raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ", 2)[1] == b"400", answer
        assert body == FIXED_400
        assert listener.malformed() == 1
        assert_nothing_leaked(answer, caplog)
        # The listener goes on serving.
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        try:
            assert b" 400 " not in await one_answer(reader, writer)
        finally:
            writer.close()

    run(kind, scenario)
    assert any("malformed" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "raw",
    [
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        b"GET /nowhere HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n",
        MALFORMED["bad-method"],
    ],
    ids=["served", "not_found", "malformed"],
)
def test_no_answer_names_the_web_framework_or_its_version(kind: str, raw: bytes) -> None:
    async def scenario(listener: Listener) -> None:
        answer = await exchange(listener, raw)
        head = answer.partition(b"\r\n\r\n")[0].lower()
        assert b"aiohttp" not in head
        assert b"python/" not in head
        assert b"server: vibes-bridge" in head

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_that_sends_nothing_is_closed_after_the_head_timeout(kind: str) -> None:
    async def scenario(listener: Listener) -> None:
        started = time.monotonic()
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        try:
            assert await read_to_end(reader) == b""
        finally:
            writer.close()
        assert time.monotonic() - started >= FAST.head_timeout_seconds * 0.9

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "start",
    [b"GET /", LINE + b"X-", LINE + b"X-Slow: "],
    ids=["request-line", "header-name", "header-value"],
)
def test_a_request_head_sent_a_byte_at_a_time_is_cut_at_the_head_timeout(
    kind: str, start: bytes
) -> None:
    """Slowloris: bytes keep arriving, but the head is never complete; the bound still holds."""

    async def scenario(listener: Listener) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        started = time.monotonic()
        writer.write(start)
        try:
            async with asyncio.timeout(IO_BOUND_S):
                while not reader.at_eof():
                    writer.write(b"a")
                    await writer.drain()
                    # Pacing the trickle, not synchronising: the loop ends at EOF.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.2):
                            assert await reader.read(1) == b""
        except ConnectionError:
            pass  # the listener closed while a byte was on its way
        finally:
            writer.close()
        assert time.monotonic() - started >= FAST.head_timeout_seconds * 0.9

    run(kind, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_an_idle_kept_alive_connection_is_closed_after_the_bound(kind: str) -> None:
    async def scenario(listener: Listener) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        try:
            await one_answer(reader, writer)
            answered = time.monotonic()
            assert await read_to_end(reader) == b""
        finally:
            writer.close()
        assert time.monotonic() - answered >= FAST.head_timeout_seconds * 0.9

    run(kind, scenario)


@pytest.mark.parametrize("sent", [0, 10, 99], ids=["no-body", "some-body", "all-but-one"])
def test_a_callback_body_that_stalls_is_answered_408_at_the_body_timeout(sent: int) -> None:
    async def scenario(listener: Listener) -> None:
        head = LINE + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        answer = await exchange(listener, head + b"x" * sent)
        assert answer.split(b" ", 2)[1] == b"408", answer
        assert listener.answers("timeout") == 1

    run("callbacks", scenario)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("extra", [1, 4])
def test_connections_beyond_the_bound_are_closed_at_once_and_open_ones_go_on(
    kind: str, extra: int
) -> None:
    async def scenario(listener: Listener) -> None:
        admitted = [
            await asyncio.open_connection("127.0.0.1", listener.port)
            for _ in range(FAST.max_connections)
        ]
        for reader, writer in admitted:  # each is being served
            await one_answer(reader, writer)
        for _ in range(extra):
            answer = await exchange(listener, b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
            assert answer == b""
        assert listener.refused("connection_limit") == extra
        for reader, writer in admitted:  # unaffected
            assert b" 400 " not in await one_answer(reader, writer)
        reader, writer = admitted.pop()
        writer.close()
        await read_to_end(reader)
        # A freed place is taken again (the close reaches the listener a little later).
        async with asyncio.timeout(IO_BOUND_S):
            while True:
                reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
                admitted.append((reader, writer))
                with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                    await one_answer(reader, writer)
                    break
        for _reader, writer in admitted:
            writer.close()

    run(kind, scenario)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"POST " + PATH + b" HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n\r\n{}",
        MALFORMED["control-char-in-authorization"],
    ],
    ids=["nothing", "a-callback", "malformed"],
)
def test_a_stranger_is_closed_at_accept_before_any_byte_is_read(
    raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario(listener: Listener) -> None:
        assert await exchange(listener, raw) == b""
        assert listener.refused("address") == 1
        assert listener.malformed() == 0
        assert listener.answers("forbidden") == 0
        assert_nothing_leaked(b"", caplog)

    run("callbacks", scenario, allow_from=["203.0.113.0/24"])


def test_with_trusted_proxies_the_allow_list_is_applied_after_the_headers() -> None:
    async def scenario(listener: Listener) -> None:
        raw = LINE + b"X-Forwarded-For: 198.51.100.1\r\nConnection: close\r\n\r\n"
        answer = await exchange(listener, raw)
        assert answer.split(b" ", 2)[1] == b"403", answer
        assert listener.refused("address") == 0
        assert listener.answers("forbidden") == 1

    run(
        "callbacks",
        scenario,
        allow_from=["203.0.113.0/24"],
        trusted_proxies=["127.0.0.1/32"],
    )


@pytest.fixture
def server_tls(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a throw-away self-signed certificate (openssl's command)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("sent", [b"", b"\x16\x03\x01"], ids=["nothing", "a-partial-hello"])
def test_a_tls_handshake_that_never_completes_is_cut_at_its_bound(
    server_tls: ssl.SSLContext, sent: bytes
) -> None:
    """Before the handshake there is no request handler; asyncio's own bound applies."""
    bounds = replace(FAST, tls_handshake_timeout_seconds=1.0)

    async def main() -> None:
        async with running("callbacks", bounds, tls=server_tls) as listener:
            started = time.monotonic()
            assert await exchange(listener, sent) == b""
            assert time.monotonic() - started >= bounds.tls_handshake_timeout_seconds * 0.9

    asyncio.run(main())
