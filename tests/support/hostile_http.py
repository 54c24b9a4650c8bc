"""A hostile HTTP server on 127.0.0.1 for the deadline and read-cap tests.

Raw asyncio streams, not a web framework: the point is to misbehave below HTTP
(trickle the headers, never answer, send a body larger than anyone should read),
which a framework would not let a handler do. It runs its own event loop on a
thread, so synchronous clients and async tests use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

TRICKLE_INTERVAL_S = 0.2
_CHUNK = b" " * 65536


class Misbehaviour(Enum):
    TRICKLE_BODY = "trickle_body"  # headers at once, then one body byte every 0.2 s, for ever
    HUGE_BODY = "huge_body"  # a body of ``body_size`` bytes, sent as fast as it is read
    NO_HEADERS = "no_headers"  # reads the request, never answers
    TRICKLE_HEADERS = "trickle_headers"  # the status line, then a header byte every 0.2 s


@dataclass
class HostileServer:
    """What to do, and what happened: the connections accepted and the bytes sent."""

    misbehaviour: Misbehaviour
    status: int = 200
    body_size: int = 50 * 1024 * 1024
    # The start of the body: a valid JSON document, then whitespace padding to body_size.
    body_head: bytes = b"{}"
    port: int = 0
    connections: int = 0
    bytes_sent: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")  # the request's headers; its body is ignored
            await self._misbehave(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client gave up: that is what the tests want
        except asyncio.CancelledError:
            pass  # the server is stopping; asyncio would log a cancelled handler as an error
        finally:
            writer.close()

    async def _misbehave(self, writer: asyncio.StreamWriter) -> None:
        kind = self.misbehaviour
        if kind is Misbehaviour.NO_HEADERS:
            await asyncio.Event().wait()
        if kind is Misbehaviour.TRICKLE_HEADERS:
            writer.write(f"HTTP/1.1 {self.status} OK\r\n".encode())
            await self._trickle(writer, b"X-Slow: " + b"a" * 1_000_000)
        if kind is Misbehaviour.TRICKLE_BODY:
            head = f"HTTP/1.1 {self.status} OK\r\nContent-Length: 1000000\r\n\r\n".encode()
            writer.write(head)
            await self._trickle(writer, self.body_head + b" " * 1_000_000)
        await self._huge(writer)

    async def _trickle(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            self.bytes_sent += 1
            await asyncio.sleep(TRICKLE_INTERVAL_S)

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        head = (
            f"HTTP/1.1 {self.status} OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {self.body_size}\r\n\r\n"
        ).encode()
        writer.write(head + self.body_head)
        left = self.body_size - len(self.body_head)
        while left > 0:
            chunk = _CHUNK[: min(left, len(_CHUNK))]
            writer.write(chunk)
            await writer.drain()
            self.bytes_sent += len(chunk)
            left -= len(chunk)


@contextlib.contextmanager
def hostile_server(
    misbehaviour: Misbehaviour,
    *,
    status: int = 200,
    body_size: int = 50 * 1024 * 1024,
    body_head: bytes = b"{}",
) -> Iterator[HostileServer]:
    """Serve ``misbehaviour`` on a free port of 127.0.0.1 until the block ends."""
    server = HostileServer(misbehaviour, status, body_size, body_head)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: list[asyncio.Server] = []

    async def start() -> None:
        listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        server.port = listener.sockets[0].getsockname()[1]
        holder.append(listener)
        started.set()

    thread = threading.Thread(target=loop.run_forever, name="hostile-http", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    started.wait(10)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(_stop(holder[0]), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


async def _stop(listener: asyncio.Server) -> None:
    listener.close()
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()
