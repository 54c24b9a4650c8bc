"""Per-key ordering: events with the same Kafka key go one after another, other keys side by side.

A customer (or an order) is one Kafka key; texting them "shipped" before
"ordered" would be wrong, so each key has a lane that delivers its events in
record order, while different keys run concurrently (the delivery slots bound
how many). Records without a key have no order to keep and each goes at once.

Runs on the asyncio loop only. A lane is one task that works through its items
in turn (one task per lane, not per item: this is on the hot path). Dropping
the item a lane is working on cancels that task; the rest of the lane carries
on in a fresh task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Item = TypeVar("Item")
log = logging.getLogger(__name__)


class KeyLanes(Generic[Item]):
    """Runs ``work(item)`` for each item, in push order per key, concurrently across keys."""

    def __init__(self, work: Callable[[Item], Awaitable[None]]) -> None:
        self._work = work
        self._queued: dict[Hashable, deque[Item]] = {}
        self._current: dict[Hashable, Item] = {}  # what each lane's task is working on
        self._tasks: dict[Hashable, asyncio.Task[None]] = {}
        self._unkeyed: dict[asyncio.Task[None], Item] = {}
        self._closing = False

    def push(self, key: Hashable | None, item: Item) -> None:
        """Queue ``item`` behind earlier items of ``key`` (None: no order, start now)."""
        if key is None:
            task = asyncio.get_running_loop().create_task(self._run_one(item))
            self._unkeyed[task] = item
            task.add_done_callback(self._unkeyed_done)
            return
        lane = self._queued.get(key)
        if lane is not None:
            lane.append(item)
            return
        self._queued[key] = deque((item,))
        self._start_lane(key)

    def _start_lane(self, key: Hashable) -> None:
        task = asyncio.get_running_loop().create_task(self._drain(key))
        self._tasks[key] = task
        task.add_done_callback(_log_failure)

    async def _run_one(self, item: Item) -> None:
        await self._work(item)

    def _unkeyed_done(self, task: asyncio.Task[None]) -> None:
        self._unkeyed.pop(task, None)
        _log_failure(task)

    async def _drain(self, key: Hashable) -> None:
        lane = self._queued[key]
        try:
            while lane:
                item = lane.popleft()
                self._current[key] = item
                await self._work(item)
        finally:
            self._current.pop(key, None)
            del self._tasks[key]
            if lane and not self._closing:  # cancelled for a dropped item: go on
                self._start_lane(key)
            else:
                del self._queued[key]

    def drop(self, unwanted: Callable[[Item], bool]) -> int:
        """Cancel running items and discard queued ones for which ``unwanted`` is true."""
        dropped = 0
        for lane in self._queued.values():
            keep = [item for item in lane if not unwanted(item)]
            dropped += len(lane) - len(keep)
            lane.clear()
            lane.extend(keep)
        for key, item in list(self._current.items()):
            if unwanted(item):
                self._tasks[key].cancel()
                dropped += 1
        for task, item in list(self._unkeyed.items()):
            if unwanted(item):
                task.cancel()
                dropped += 1
        return dropped

    @property
    def busy(self) -> int:
        """Items running or queued."""
        return len(self._current) + len(self._unkeyed) + sum(map(len, self._queued.values()))

    async def cancel_all(self) -> None:
        """Cancel everything (shutdown after its deadline) and wait for it to stop."""
        self._closing = True
        for lane in self._queued.values():
            lane.clear()
        tasks = [*self._tasks.values(), *self._unkeyed]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _log_failure(task: asyncio.Task[None]) -> None:
    # work() handles its own failures; anything reaching here is a bug, and it must
    # not vanish silently in a done callback. Its record stays unfinished, so its
    # offset is never committed.
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("delivery task failed", exc_info=error)
