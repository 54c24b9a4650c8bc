"""Per-key ordering: events with the same Kafka key go one after another, other keys side by side.

A customer (or an order) is one Kafka key; texting them "shipped" before
"ordered" would be wrong, so each key has a lane that delivers its events in
record order, while different keys run concurrently (the delivery slots bound
how many). Records without a key have no order to keep and each goes at once.

Runs on the asyncio loop only. Each item runs as its own task so that one
item can be cancelled (its partition was revoked) without losing the rest of
its lane.
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
        self._running: dict[asyncio.Task[None], Item] = {}
        self._drains: set[asyncio.Task[None]] = set()

    def push(self, key: Hashable | None, item: Item) -> None:
        """Queue ``item`` behind earlier items of ``key`` (None: no order, start now)."""
        if key is None:
            self._start(item)
            return
        lane = self._queued.get(key)
        if lane is not None:
            lane.append(item)
            return
        self._queued[key] = deque((item,))
        drain = asyncio.get_running_loop().create_task(self._drain(key))
        self._drains.add(drain)
        drain.add_done_callback(self._drains.discard)

    def _start(self, item: Item) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._run(item))
        self._running[task] = item
        task.add_done_callback(self._finished)
        return task

    async def _run(self, item: Item) -> None:
        await self._work(item)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            # work() handles its own failures; anything reaching here is a bug, and
            # it must not vanish silently in a done callback. Its record stays
            # unfinished, so its offset is never committed.
            log.error("delivery task failed", exc_info=error)

    async def _drain(self, key: Hashable) -> None:
        lane = self._queued[key]
        try:
            while lane:
                task = self._start(lane.popleft())
                # wait() rather than await: a cancelled item must not end the lane.
                await asyncio.wait((task,))
        finally:
            del self._queued[key]

    def drop(self, unwanted: Callable[[Item], bool]) -> int:
        """Cancel running items and discard queued ones for which ``unwanted`` is true."""
        dropped = 0
        for lane in self._queued.values():
            keep = [item for item in lane if not unwanted(item)]
            dropped += len(lane) - len(keep)
            lane.clear()
            lane.extend(keep)
        for task, item in list(self._running.items()):
            if unwanted(item):
                task.cancel()
                dropped += 1
        return dropped

    @property
    def busy(self) -> int:
        """Items running or queued."""
        return len(self._running) + sum(len(lane) for lane in self._queued.values())

    async def cancel_all(self) -> None:
        """Cancel everything (shutdown after its deadline) and wait for it to stop."""
        for lane in self._queued.values():
            lane.clear()
        tasks = [*self._running, *self._drains]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
