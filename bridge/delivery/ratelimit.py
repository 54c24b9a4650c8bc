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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]
# A caller whose slot is further away wakes this often to see whether the rate
# changed: a fleet share raised from its 2 % start must not leave callers
# asleep for the tens of seconds their first slots were planned at.
_NAP_SECONDS = 0.25


class Withdrawn(Exception):
    """The caller withdrew the event (to park it) while it waited for its paused company key
    (docs/isolation.md, "Parking"); raised by :meth:`RateLimiter.acquire` when ``leave``
    says so, and by the deliverer's other waits."""


Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class KeyBudget:
    """One key's schedule: the interval between slots, the next free slot, any hold.

    Pure: every method takes ``now``. The limiter wraps it with a clock and a sleep.
    """

    interval: float
    next_free: float = float("-inf")
    hold_start: float = float("-inf")
    held_until: float = float("-inf")
    epoch: int = 0  # changes when a rate change voids the reserved slots

    def reserve(self, now: float) -> float:
        """Take the next free slot at or after ``now`` and any hold; the send time."""
        slot = max(now, self.next_free, self.held_until)
        self.next_free = slot + self.interval
        return slot

    def set_interval(self, interval: float, now: float = float("-inf")) -> None:
        """Re-space the schedule from ``now``: at once, in both directions.

        Without slots reserved past ``now``, the next slot is ``interval`` after
        the last one taken. With some (callers asleep until them), those are
        void: a lowered rate must not let the old, tighter spacing through, and
        a raised one must not keep callers asleep until their old, later slots.
        The epoch changes so they reserve again; the next slot is ``interval``
        after ``now``, as if a send had just happened.
        """
        last_slot = self.next_free - self.interval
        self.interval = interval
        if last_slot > now:
            self.epoch += 1
            self.next_free = now + interval
        else:
            self.next_free = last_slot + interval

    def hold(self, now: float, until: float) -> None:
        """No send in ``[now, until)``: slots handed out in it are void, later ones re-planned.

        Slots before ``now`` are taken as sent, so the next slot keeps its distance
        from them; a hold that overlaps the current one extends it.
        """
        if until <= self.held_until:
            return
        if self.held_until < now:
            self.hold_start = now
        self.held_until = until
        last_slot = self.next_free - self.interval
        if last_slot >= until:
            return  # slots past the hold stay valid; voided waiters queue behind them
        # The latest slot that may have been sent: the last one, unless the hold voids it.
        latest_sent = last_slot if last_slot < self.hold_start else self.hold_start
        self.next_free = max(until, latest_sent + self.interval)

    def voided(self, slot: float) -> bool:
        """True when a hold that arrived after ``slot`` was reserved covers it."""
        return self.hold_start <= slot < self.held_until


class RateLimiter:
    """Per company key; reserves the next free slot and sleeps until it (no thundering herd).

    Every key starts at the rate given here, or its own in ``key_rates`` (a
    company with its own ``requests_per_second``); ``set_rate`` changes one key at
    run time (issue 8 shares budgets across replicas and adds AIMD on top of it).
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        key_rates: Mapping[str, float] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._default_interval = _interval(rate_per_second)
        self._key_intervals = {key: _interval(rate) for key, rate in (key_rates or {}).items()}
        self._clock = clock
        self._sleep = sleep
        self._budgets: dict[str, KeyBudget] = {}

    async def acquire(self, company_key: str, leave: Callable[[], bool] | None = None) -> float:
        """Wait for this key's next slot; the seconds waited. Raises :class:`Withdrawn`,
        its slot given up, when ``leave`` is true after a nap (within ``_NAP_SECONDS``).

        A hold (429) that arrives while a caller sleeps voids its slot: the
        caller reserves again behind the hold instead of sending into it. So
        does a rate change: the caller reserves again on the new spacing.
        Cancelled while sleeping, the slot is simply lost: that only ever
        sends less, never more.
        """
        budget = self._budget(company_key)
        started = self._clock()
        while True:
            epoch = budget.epoch
            slot = budget.reserve(self._clock())
            await self._sleep_until(budget, slot, epoch, leave)
            if budget.epoch == epoch and not budget.voided(slot):
                return self._clock() - started

    async def _sleep_until(
        self, budget: KeyBudget, slot: float, epoch: int, leave: Callable[[], bool] | None
    ) -> None:
        """Sleep until ``slot`` in naps, so that a rate change (or ``leave``) wakes the
        caller in time."""
        while budget.epoch == epoch:
            now = self._clock()
            if slot <= now:
                return
            if leave is not None and leave():
                raise Withdrawn
            await self._sleep(min(slot - now, _NAP_SECONDS))

    def set_rate(self, company_key: str, rate_per_second: float) -> None:
        """Change one key's rate from its next slot on."""
        self._budget(company_key).set_interval(_interval(rate_per_second), self._clock())

    def rate(self, company_key: str) -> float:
        """The key's rate in force, in sends per second."""
        return 1.0 / self._budget(company_key).interval

    def hold(self, company_key: str, seconds: float) -> None:
        """429: nobody on this key sends before now + ``seconds``."""
        now = self._clock()
        self._budget(company_key).hold(now, now + max(seconds, 0.0))

    def _budget(self, company_key: str) -> KeyBudget:
        budget = self._budgets.get(company_key)
        if budget is None:
            interval = self._key_intervals.get(company_key, self._default_interval)
            budget = self._budgets[company_key] = KeyBudget(interval)
        return budget


def _interval(rate_per_second: float) -> float:
    if not rate_per_second > 0:  # also refuses NaN
        raise ValueError("a rate must be a positive number of requests per second")
    return 1.0 / rate_per_second
