"""Per-company-key rate limiting that plans sends instead of refusing them.

Each caller reserves the next free slot of its key's schedule and sleeps until
it: slots are at least ``1 / rate`` apart, so no one-second window holds more
than ``rate`` (+1 at the boundary) sends, and many waiting tasks wake one at a
time, never all at once (no thundering herd). A token bucket with a burst would
allow a second's worth at once, which is exactly what makes Vibes answer 429
when the account's budget is the whole 300 per second.

The simulator's own limiter (``bridge.sim.ratelimit``) refuses requests; this
one must make them wait, so the two are deliberately separate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class KeyBudget:
    """One key's schedule: the interval between slots, the next free slot, any hold.

    Pure: every method takes ``now``. The limiter wraps it with a clock and a sleep.
    """

    interval: float
    next_free: float = float("-inf")
    held_until: float = float("-inf")

    def reserve(self, now: float) -> float:
        """Take the next free slot at or after ``now`` and any hold; the send time."""
        slot = max(now, self.next_free, self.held_until)
        self.next_free = slot + self.interval
        return slot

    def set_interval(self, interval: float) -> None:
        """Re-space the schedule: the next slot is ``interval`` after the last one taken.

        Applies at once in both directions, so a lowered rate holds for the very
        next send and a raised one does not wait out the old, longer spacing.
        """
        last_slot = self.next_free - self.interval
        self.interval = interval
        self.next_free = last_slot + interval

    def hold(self, until: float) -> None:
        """No slot before ``until``; slots already handed out before it are void."""
        self.held_until = max(self.held_until, until)
        self.next_free = max(self.next_free, self.held_until)

    def voided(self, slot: float) -> bool:
        """True when a hold arrived after ``slot`` was reserved and covers it."""
        return slot < self.held_until


class RateLimiter:
    """Per company key; reserves the next free slot and sleeps until it (no thundering herd).

    Every key starts at the rate given here; ``set_rate`` changes one key at run
    time (issue 8 shares budgets across replicas and adds AIMD on top of it).
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._default_interval = _interval(rate_per_second)
        self._clock = clock
        self._sleep = sleep
        self._budgets: dict[str, KeyBudget] = {}

    async def acquire(self, company_key: str) -> float:
        """Wait for this key's next slot; the seconds waited.

        A hold (429) that arrives while a caller sleeps voids its slot: the
        caller reserves again behind the hold instead of sending into it.
        Cancelled while sleeping, the slot is simply lost: that only ever
        sends less, never more.
        """
        budget = self._budget(company_key)
        started = self._clock()
        while True:
            now = self._clock()
            slot = budget.reserve(now)
            if slot > now:
                await self._sleep(slot - now)
            if not budget.voided(slot):
                return self._clock() - started

    def set_rate(self, company_key: str, rate_per_second: float) -> None:
        """Change one key's rate from its next slot on."""
        self._budget(company_key).set_interval(_interval(rate_per_second))

    def rate(self, company_key: str) -> float:
        """The key's rate in force, in sends per second."""
        return 1.0 / self._budget(company_key).interval

    def hold(self, company_key: str, seconds: float) -> None:
        """429: nobody on this key sends before now + ``seconds``."""
        self._budget(company_key).hold(self._clock() + max(seconds, 0.0))

    def _budget(self, company_key: str) -> KeyBudget:
        budget = self._budgets.get(company_key)
        if budget is None:
            budget = self._budgets[company_key] = KeyBudget(self._default_interval)
        return budget


def _interval(rate_per_second: float) -> float:
    if not rate_per_second > 0:  # also refuses NaN
        raise ValueError("a rate must be a positive number of requests per second")
    return 1.0 / rate_per_second
