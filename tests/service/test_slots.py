"""The delivery slots by priority: high first, the lower classes slowed but never starved."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bridge.mapping.engine import Priority
from bridge.service.slots import PrioritySlots


async def _order_served(slots: PrioritySlots, waiting: list[Priority]) -> list[Priority]:
    """Hold the only slot, queue ``waiting`` in that order, then let them through one by one."""
    served: list[Priority] = []
    await slots.acquire(Priority.LOW)

    async def one(priority: Priority) -> None:
        async with slots.slot(priority):
            served.append(priority)
            await asyncio.sleep(0)

    tasks = [asyncio.ensure_future(one(priority)) for priority in waiting]
    await asyncio.sleep(0)  # every task is queued
    slots.release()
    await asyncio.gather(*tasks)
    return served


def test_a_high_event_takes_the_next_slot_before_an_earlier_backlog() -> None:
    waiting = [Priority.LOW] * 5 + [Priority.HIGH]
    served = asyncio.run(_order_served(PrioritySlots(1), waiting))
    assert served[0] is Priority.HIGH
    assert served[1:] == [Priority.LOW] * 5


def test_within_a_class_first_come_first_served() -> None:
    async def scenario() -> list[int]:
        slots = PrioritySlots(1)
        await slots.acquire(Priority.NORMAL)
        served: list[int] = []

        async def one(number: int) -> None:
            async with slots.slot(Priority.NORMAL):
                served.append(number)

        tasks = [asyncio.ensure_future(one(number)) for number in range(6)]
        await asyncio.sleep(0)
        slots.release()
        await asyncio.gather(*tasks)
        return served

    assert asyncio.run(scenario()) == list(range(6))


def test_with_every_class_waiting_slots_go_8_2_1_so_none_starves() -> None:
    waiting = [Priority.LOW] * 40 + [Priority.NORMAL] * 40 + [Priority.HIGH] * 80
    served = asyncio.run(_order_served(PrioritySlots(1), waiting))
    first = Counter(served[:55])  # five rounds of 11 while all three wait
    assert first == {Priority.HIGH: 40, Priority.NORMAL: 10, Priority.LOW: 5}
    assert Counter(served) == Counter(waiting)


def test_a_cancelled_waiter_gives_up_its_place_and_a_cancelled_winner_its_slot() -> None:
    async def scenario() -> None:
        slots = PrioritySlots(1)
        await slots.acquire(Priority.LOW)
        first = asyncio.ensure_future(slots.acquire(Priority.HIGH))
        second = asyncio.ensure_future(slots.acquire(Priority.LOW))
        await asyncio.sleep(0)
        assert slots.waiting(Priority.HIGH) == 1
        first.cancel()
        await asyncio.sleep(0)
        assert slots.waiting(Priority.HIGH) == 0
        slots.release()
        await asyncio.wait_for(second, 1)  # the slot went to the one still waiting
        third = asyncio.ensure_future(slots.acquire(Priority.NORMAL))
        await asyncio.sleep(0)
        slots.release()  # handed to third ...
        third.cancel()  # ... cancelled before it ran: the slot is passed on, not lost
        with pytest.raises(asyncio.CancelledError):
            await third
        await asyncio.wait_for(slots.acquire(Priority.LOW), 1)

    asyncio.run(scenario())


def test_free_slots_are_taken_at_once() -> None:
    async def scenario() -> None:
        slots = PrioritySlots(3)
        for priority in Priority:
            await asyncio.wait_for(slots.acquire(priority), 1)

    asyncio.run(scenario())


def test_a_waiter_cancelled_just_before_a_release_ends_cancelled() -> None:
    async def scenario() -> None:
        slots = PrioritySlots(1)
        await slots.acquire(Priority.LOW)
        first = asyncio.ensure_future(slots.acquire(Priority.HIGH))
        second = asyncio.ensure_future(slots.acquire(Priority.HIGH))
        await asyncio.sleep(0)
        first.cancel()  # its future is cancelled now, its handler runs later ...
        slots.release()  # ... after this release has dropped it from the queue
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)

    asyncio.run(scenario())
