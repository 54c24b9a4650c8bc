"""The ``max_in_flight`` delivery slots, handed out by priority (a rule's ``priority:``).

When the rate budget is the bottleneck, events queue here, each lane's head
waiting for a slot; the order they get one in is the order they reach the
limiter. A plain semaphore serves them first come, first served, so a
high-priority event would wait behind the whole backlog. Here a freed slot
goes to a waiter of the class chosen by smooth weighted round-robin over the
classes that have waiters (weights high 8, normal 2, low 1, as nginx balances
upstreams): while all three wait, 8 of every 11 slots go to high, 2 to normal
and 1 to low, so a lower class slows down but never starves. Within a class,
first come, first served. Per-key order is the lanes' business and is not
touched: a lane has at most one event waiting here.

Hand-written because asyncio has no priority semaphore, and a
``PriorityQueue`` of waiters would starve the lower classes outright.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Final

from bridge.mapping.engine import Priority

WEIGHTS: Final[Mapping[Priority, int]] = {Priority.HIGH: 8, Priority.NORMAL: 2, Priority.LOW: 1}


class PrioritySlots:
    """``async with slots.slot(priority):`` holds one of ``size`` slots.

    Runs on one event loop. A cancelled waiter leaves its queue; a slot handed
    to a waiter cancelled before it woke is passed on.
    """

    def __init__(self, size: int, weights: Mapping[Priority, int] = WEIGHTS) -> None:
        if size < 1:
            raise ValueError("at least one slot")
        self._free = size
        self._weights = dict(weights)
        self._waiters: dict[Priority, deque[asyncio.Future[None]]] = {
            priority: deque() for priority in Priority
        }
        self._credit: dict[Priority, int] = dict.fromkeys(Priority, 0)

    def waiting(self, priority: Priority) -> int:
        """Waiters of ``priority`` now (tests and the benchmark)."""
        return sum(1 for waiter in self._waiters[priority] if not waiter.done())

    def slot(self, priority: Priority) -> _Slot:
        return _Slot(self, priority)

    async def acquire(self, priority: Priority) -> None:
        if self._free > 0 and self._nobody_waiting():
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[priority].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled: pass it on
            elif waiter in self._waiters[priority]:  # a release may have dropped it already
                self._waiters[priority].remove(waiter)
            raise

    def release(self) -> None:
        self._free += 1
        while self._free > 0:
            waiter = self._next_waiter()
            if waiter is None:
                return
            self._free -= 1
            waiter.set_result(None)

    def _nobody_waiting(self) -> bool:
        # A cancelled waiter may sit in its queue until its task runs again: not waiting.
        return all(waiter.done() for queue in self._waiters.values() for waiter in queue)

    def _next_waiter(self) -> asyncio.Future[None] | None:
        """The head of the class smooth weighted round-robin picks among those waiting."""
        for queue in self._waiters.values():
            while queue and queue[0].done():  # cancelled, not yet removed
                queue.popleft()
        waiting = [priority for priority, queue in self._waiters.items() if queue]
        for priority in Priority:
            if priority not in waiting:
                self._credit[priority] = 0  # a class that stopped waiting starts afresh
        if not waiting:
            return None
        total = 0
        for priority in waiting:
            self._credit[priority] += self._weights[priority]
            total += self._weights[priority]
        chosen = max(waiting, key=lambda priority: (self._credit[priority], -priority))
        self._credit[chosen] -= total
        return self._waiters[chosen].popleft()


class _Slot:
    __slots__ = ("_priority", "_slots")

    def __init__(self, slots: PrioritySlots, priority: Priority) -> None:
        self._slots = slots
        self._priority = priority

    async def __aenter__(self) -> None:
        await self._slots.acquire(self._priority)

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()
