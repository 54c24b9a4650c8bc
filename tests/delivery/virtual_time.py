"""A virtual clock for asyncio tests: ``sleep`` parks the task until the test advances time.

Deliveries and the rate limiter take ``clock`` and ``sleep`` as parameters, so a
test of backoff, Retry-After or a 15-second credentials probe runs in
milliseconds of real time and sees exact virtual times.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Yields to the loop before time may advance: enough for every runnable task to
# reach its next await (the code under test has no long chains of bare awaits).
SETTLE_YIELDS = 50


class VirtualTime:
    """Monotonic virtual seconds; time moves only to the earliest sleeper's wake-up."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def settle(self) -> None:
        for _ in range(SETTLE_YIELDS):
            await asyncio.sleep(0)

    async def advance(self) -> bool:
        """Let tasks settle, then wake the earliest sleeper(s); False when none sleeps."""
        await self.settle()
        while self._sleepers and self._sleepers[0][2].done():  # cancelled sleepers
            heapq.heappop(self._sleepers)
        if not self._sleepers:
            return False
        wake_at = self._sleepers[0][0]
        self.now = max(self.now, wake_at)
        while self._sleepers and self._sleepers[0][0] <= wake_at:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        return True

    async def run(self, coro: Coroutine[Any, Any, T], max_steps: int = 100_000) -> T:
        """Run ``coro`` to completion, advancing virtual time whenever everything sleeps."""
        task = asyncio.ensure_future(coro)
        for _ in range(max_steps):
            if task.done():
                return task.result()
            await self.settle()
            if task.done():
                return task.result()
            if not await self.advance() and not task.done():
                await self.settle()
                if not task.done():
                    task.cancel()
                    raise AssertionError("deadlock: the task waits on something other than time")
        task.cancel()
        raise AssertionError("virtual time ran for too many steps")
