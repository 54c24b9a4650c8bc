"""The one way the service calls blocking code (librdkafka, file reads) from asyncio.

``await call_blocking(fn, *args)`` runs ``fn(*args)`` on a daemon thread of a
bounded pool and hands its result or exception back to the awaiting coroutine.

Why not ``asyncio.to_thread`` or ``loop.run_in_executor``: their worker threads
are not daemons. ``asyncio.run`` joins the default executor when the loop closes
and the interpreter joins every ``ThreadPoolExecutor`` worker at exit, so one call
stuck in librdkafka (a broker that never answers) keeps the process alive after
its work is done; CI once hung for an hour after pytest's summary that way. The
standard library has no daemon executor, hence this small one.

Bounds (docs/architecture.md, "Blocking calls from asyncio"): at most
:data:`MAX_THREADS` calls run at once; a call beyond that waits, first in first
out, for one of them to end. A thread exists only while it has work: it takes the
next waiting call when its own ends, and ends when none waits. A coroutine
cancelled while its call runs stops waiting at once; the call itself cannot be
interrupted, so it runs on and its result goes to ``abandoned`` (to close what it
opened) or is dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar, TypeVarTuple

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Long-lived calls (the consumer loop, replay's reader) hold one each for a whole
# run; the rest are short. A handful at a time is the most a process needs.
MAX_THREADS: Final = 32


async def call_blocking(
    fn: Callable[[*Ts], T], *args: *Ts, abandoned: Callable[[T], None] | None = None
) -> T:
    """``fn(*args)`` on a daemon thread; its result, or its exception raised here.

    ``abandoned`` receives the result of a call whose coroutine was cancelled
    before it ended (a client it opened, to close).
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()
    POOL.submit(_Job(lambda: context.run(fn, *args), loop, future, abandoned).run)
    return await future


class DaemonPool:
    """At most ``max_threads`` daemon threads, each running calls until none waits."""

    def __init__(self, max_threads: int) -> None:
        self.max_threads = max_threads
        self._lock = threading.Lock()
        self._waiting: deque[Callable[[], None]] = deque()
        self._running = 0

    @property
    def running(self) -> int:
        """Threads alive now (each running a call)."""
        with self._lock:
            return self._running

    def submit(self, work: Callable[[], None]) -> None:
        """Run ``work`` (which must not raise) on a thread now, or when one is free."""
        with self._lock:
            if self._running >= self.max_threads:
                self._waiting.append(work)
                return
            self._running += 1
        threading.Thread(target=self._work, args=(work,), name="blocking-call", daemon=True).start()

    def _work(self, first: Callable[[], None]) -> None:
        job: Callable[[], None] | None = first
        while job is not None:
            job()
            with self._lock:
                if self._waiting:
                    job = self._waiting.popleft()
                else:
                    self._running -= 1
                    job = None


POOL: Final = DaemonPool(MAX_THREADS)


@dataclass(frozen=True, slots=True)
class _Job(Generic[T]):
    """One call and where its outcome goes."""

    call: Callable[[], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    abandoned: Callable[[T], None] | None

    def run(self) -> None:
        try:
            result = self.call()
        except BaseException as exc:  # handed to the awaiting coroutine, like to_thread
            self._hand_over(None, exc)
        else:
            self._hand_over(result, None)

    def _hand_over(self, result: T | None, error: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self._settle, result, error)
        except RuntimeError:  # the loop is closed: nobody will take the result
            self._abandon(result, error)

    def _settle(self, result: T | None, error: BaseException | None) -> None:
        """On the loop: finish the future, or abandon the result if nobody waits."""
        if self.future.done():
            self._abandon(result, error)
        elif error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)  # type: ignore[arg-type]

    def _abandon(self, result: T | None, error: BaseException | None) -> None:
        if error is None and self.abandoned is not None:
            self.abandoned(result)  # type: ignore[arg-type]
