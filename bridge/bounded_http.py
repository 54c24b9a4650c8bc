"""Every outbound HTTP call in one overall deadline, and every answer read up to a cap.

httpx's timeouts are per phase and per read: a server that sends a byte every
few seconds never trips them, so one answer can hold its caller for ever. And
``aread()`` keeps the whole body, however large. Here the whole exchange
(connect, send, headers and body together) runs inside one ``asyncio.timeout``,
and the body is taken with httpx's streaming API chunk by chunk up to a cap; the
rest is never read: the response is closed, which closes its connection instead
of returning it to the pool (httpcore and aiohttp both do this for a body not
read to its end), so the next request cannot be handed the unread rest.

It lives beside the packages, not in ``bridge/delivery``, because the Schema
Registry client (``bridge/codecs/registry.py``) uses it too, and the codecs must
not depend on the delivery edge (importing that package from the codecs also made
``bridge.config`` import itself in a circle). It needs only httpx and anyio.

httpx's per-phase timeouts stay as inner bounds. The synchronous clients (the
Schema Registry client, the Callback API client) get the same deadline by
running the same coroutine on a private event loop thread (:class:`BlockingHttp`):
a thread blocked in ``recv`` cannot otherwise be given an overall deadline.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import httpx

_T = TypeVar("_T")
# Closing: the loop thread is asked to stop and given this long to do so.
_STOP_SECONDS: Final = 5.0
# A caller waiting for its call looks this often whether the loop thread has gone.
_WATCH_SECONDS: Final = 0.5

# The bridge never wants a compressed answer: a small compressed body may unpack
# to far more than the cap in one chunk. Sent by the clients built on httpx.Client.
NO_COMPRESSION: Mapping[str, str] = {"Accept-Encoding": "identity"}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer whose body was read up to a cap; ``truncated`` when more was sent."""

    status: int
    headers: httpx.Headers
    body: bytes
    truncated: bool


async def exchange(
    send: Callable[[], Awaitable[httpx.Response]], *, deadline_seconds: float, limit: int
) -> Answer:
    """``send()`` and read its answer's body up to ``limit`` bytes, all within the deadline.

    Raises ``TimeoutError`` when the deadline passes (whatever phase it was in),
    and httpx's (or the transport's) errors as they come. The response is always
    closed.
    """
    async with asyncio.timeout(deadline_seconds):
        response = await send()
        try:
            body, truncated = await read_capped(response, limit)
        finally:
            await response.aclose()
    return Answer(response.status_code, response.headers, body, truncated)


async def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether the server sent more."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        room = limit - size
        if len(chunk) > room:
            chunks.append(chunk[:room])
            return b"".join(chunks), True
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), False


def is_deadline(exc: BaseException) -> bool:
    """Whether ``exc`` is a timeout: the overall deadline or one of httpx's own."""
    return isinstance(exc, TimeoutError | httpx.TimeoutException)


class BlockingHttp:
    """An ``httpx.AsyncClient`` for synchronous callers, each call under :func:`exchange`.

    Thread-safe: calls from any thread run on the private loop thread. Also safe
    to call from a thread that runs an event loop of its own (it then blocks it,
    as a synchronous client would).
    """

    def __init__(self, client: httpx.AsyncClient, *, owns_client: bool = True) -> None:
        """``owns_client``: close ``client`` with this (not when a caller lent it)."""
        self._loop = LoopThread("bridge-http")
        # A client dropped without close() still ends its thread (not its connections).
        self._finalizer = weakref.finalize(self, self._loop.stop)
        self._client = client
        self._owns_client = owns_client
        self._closed = False

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline_seconds: float,
        limit: int,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """One request and its capped answer; raises ``TimeoutError`` or ``httpx.HTTPError``.

        httpcore's async TLS stream lets some errors through untranslated (a
        server's TLS alert arrives as a bare ``ssl.SSLError`` while reading), so
        OS-level errors are turned into the httpx error they stand for here, once,
        for every synchronous client.
        """
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        send = functools.partial(self._send, method, url, content, headers)
        call = functools.partial(exchange, send, deadline_seconds=deadline_seconds, limit=limit)
        try:
            return self._loop.run(call())
        except TimeoutError:
            raise
        except Exception as exc:
            error = as_httpx_error(exc)
            if error is None or error is exc:
                raise
            raise error from exc

    async def _send(
        self, method: str, url: str, content: bytes | None, headers: Mapping[str, str] | None
    ) -> httpx.Response:
        request = self._client.build_request(method, url, content=content, headers=headers)
        return await self._client.send(request, stream=True)

    def close(self) -> None:
        """Close the connections and stop the loop thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_client:
                self._loop.run(self._client.aclose())
        finally:
            self._finalizer()


class LoopThread:
    """An event loop of its own on a daemon thread, for synchronous callers.

    Hand-written on ``asyncio.run_coroutine_threadsafe`` rather than anyio's
    blocking portal: the portal runs on a non-daemon executor thread and stops
    from a generator's ``finally``, so one client never closed (a test's, or a
    command's error path) kept the interpreter from exiting, for ever (CI passed
    every test, then hung until its time limit). A daemon thread never holds up
    exit, and stopping is bounded.
    """

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            self._cancel_leftovers()
        finally:
            self._loop.close()

    def _cancel_leftovers(self) -> None:
        """Cancel the calls still running when the loop stopped, so their callers hear of it."""
        leftovers = asyncio.all_tasks(self._loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            gathered = asyncio.gather(*leftovers, return_exceptions=True)
            with contextlib.suppress(TimeoutError):  # a call that ignores cancellation
                self._loop.run_until_complete(asyncio.wait_for(gathered, _STOP_SECONDS))

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on the loop thread and wait for its result.

        Not bounded by a time here: every coroutine given is bounded itself
        (:func:`exchange`'s deadline, a client's close). But a call that races
        :meth:`stop` can be left on a loop that will never run it, so the wait
        watches the thread and gives up once it has ended.
        """
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a LoopThread cannot wait for itself")
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop is closed
            coroutine.close()
            raise RuntimeError("the loop thread has stopped") from None
        while not concurrent.futures.wait([future], timeout=_WATCH_SECONDS).done:
            if not self._thread.is_alive():
                future.cancel()
                break
        if future.cancelled():
            raise RuntimeError("the loop thread stopped before the call finished")
        return future.result()

    def stop(self) -> None:
        """Stop the loop and wait (bounded) for its thread; idempotent."""
        if not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:  # closed meanwhile
                return
        if self._thread is not threading.current_thread():
            self._thread.join(_STOP_SECONDS)


def as_httpx_error(exc: Exception) -> httpx.HTTPError | None:
    """An exception from below httpx as the httpx error it stands for; None for anything else.

    httpx-aiohttp maps most aiohttp errors to httpx's, but lets the rest through
    unchanged (a malformed answer surfaces as aiohttp's own ClientResponseError,
    while sending or while reading the body). The client promises never to raise
    for network trouble, and the delivery package may not import aiohttp, so such
    errors are recognised by where their class lives. Anything else (a bug) is
    not translated: it must surface, not be retried forever.
    """
    if isinstance(exc, httpx.HTTPError):
        return exc
    if not _from_aiohttp(exc) and not isinstance(exc, OSError):
        return None
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(type(exc).__name__)
    return httpx.RemoteProtocolError(type(exc).__name__)


def _from_aiohttp(exc: Exception) -> bool:
    return type(exc).__module__.partition(".")[0] in ("aiohttp", "httpx_aiohttp")
