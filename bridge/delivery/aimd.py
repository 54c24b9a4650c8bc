"""AIMD on top of the planned rate: back off when Vibes says 429 anyway, recover slowly.

The fleet plan keeps the group within ``vibes.requests_per_second``, but 429s
can still come: another client of the same account, or a real limit lower than
the configured one. Then, as TCP does with congestion: multiplicative decrease
(the rate in force times ``decrease``), at most once per ``cooldown`` since the
requests already in flight answer 429 too and are the same signal; no increase
while ``Retry-After`` holds the key; then additive increase, ``increase_fraction``
of the share per second, until the ceiling reaches the share and AIMD lets go.

Pure: every method takes ``now``. :class:`AdaptiveLimiter` applies it to the
limiter.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from bridge.delivery.ratelimit import Clock, RateLimiter, Sleep

DECREASE: Final = 0.7
INCREASE_FRACTION: Final = 0.05  # of the share, per second: from 70 % back to 100 % in 6 s
COOLDOWN_SECONDS: Final = 1.0
# Never below this fraction of the share: a key must keep probing to recover.
MIN_FRACTION: Final = 0.02


@dataclass(slots=True)
class Aimd:
    """One key's AIMD ceiling; ``None`` while no 429 constrains it."""

    ceiling: float | None = None
    decreased_at: float = float("-inf")
    held_until: float = float("-inf")
    advanced_at: float = float("-inf")
    decreases: int = 0

    def rate(self, share: float) -> float:
        """The rate in force: the share, or the ceiling below it."""
        return share if self.ceiling is None else min(share, self.ceiling)

    def rate_limited(self, now: float, retry_after: float, share: float) -> bool:
        """A 429 at ``now``; True when it lowered the ceiling (not a repeat of one episode)."""
        self.held_until = max(self.held_until, now + max(retry_after, 0.0))
        self.advanced_at = max(self.advanced_at, self.held_until)
        if share <= 0:  # a lent share plans nothing; the 429 answered a send from before
            return False
        if now - self.decreased_at < COOLDOWN_SECONDS:
            return False
        self.ceiling = max(self.rate(share) * DECREASE, share * MIN_FRACTION)
        self.decreased_at = now
        self.decreases += 1
        return True

    def advance(self, now: float, share: float) -> None:
        """Additive increase for the time since the last call, outside any hold."""
        if self.ceiling is None:
            return
        start = max(self.advanced_at, self.held_until)
        if now > start:
            self.ceiling += share * INCREASE_FRACTION * (now - start)
            self.advanced_at = now
        if self.ceiling >= share:
            self.ceiling = None


@dataclass(frozen=True, slots=True)
class Usage:
    """One key's use of the limiter since the last count."""

    sends: int
    # Caller-seconds spent waiting for a slot (the area under the queue): over
    # a span, the mean number of callers waiting. Waits still going on count.
    waited_seconds: float
    waiting: int  # callers waiting now


@dataclass(frozen=True, slots=True)
class KeyRates:
    """One key's figures for the gauges: the planned share and the rate in force."""

    share: float
    effective: float
    decreases: int


class AdaptiveLimiter(RateLimiter):
    """A :class:`RateLimiter` whose rate per key is min(share, AIMD ceiling), with usage counts.

    The deliverer already calls :meth:`hold` on every 429 (with ``Retry-After``
    or its backoff delay), so the same call feeds AIMD. :meth:`set_share` is
    the fleet planner's hook; :meth:`take_usage` tells it what this process
    sent and how long callers queued, per key, since the last call.

    A share of 0 is a floor the fleet lent to busier members: nothing is
    sent on the key, and callers wait (they count as waiting, which is how the
    fleet sees that the key has work again) until a share comes back. A caller
    whose slot was planned before the share fell to 0 does not send either: it
    waits with the others.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        key_rates: Mapping[str, float] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(rate_per_second, key_rates=key_rates, clock=clock, sleep=sleep)
        self._initial_share = rate_per_second
        self._initial_shares: dict[str, float] = dict(key_rates or {})
        self._shares: dict[str, float] = {}
        self._aimd: dict[str, Aimd] = {}
        self._sends: dict[str, int] = {}
        self._waited: dict[str, float] = {}  # caller-seconds, up to _counted_at
        self._waiting: dict[str, int] = {}
        self._counted_at: dict[str, float] = {}
        self._lent: dict[str, asyncio.Event] = {}  # set when the key's share comes back
        self._usage_since = clock()

    def set_default_share(self, share: float, company_key: str | None = None) -> None:
        """The share of every key not planned yet (the fleet's conservative start);
        with ``company_key``, of that key alone (a company with a budget of its own)."""
        if company_key is not None:
            self._initial_shares[company_key] = share
            self._key_intervals[company_key] = 1.0 / share
            if company_key in self._budgets and company_key not in self._shares:
                self._apply(company_key)
            return
        self._initial_share = share
        self._default_interval = 1.0 / share  # keys first seen from now on start at it
        for key in self._budgets:
            if key not in self._shares:
                self._apply(key)

    async def acquire(self, company_key: str, leave: Callable[[], bool] | None = None) -> float:
        started = self._clock()
        self._count_waiting(company_key, 1)
        try:
            while True:
                lent = self._lent.get(company_key)
                if lent is not None:
                    await lent.wait()
                    continue
                await super().acquire(company_key, leave)
                if company_key not in self._lent:
                    break
        finally:
            self._count_waiting(company_key, -1)
        self._sends[company_key] = self._sends.get(company_key, 0) + 1
        return self._clock() - started

    def hold(self, company_key: str, seconds: float) -> None:
        super().hold(company_key, seconds)
        share = self._share(company_key)
        if self._aimd_of(company_key).rate_limited(self._clock(), seconds, share):
            self._apply(company_key)

    def set_share(self, company_key: str, share: float) -> None:
        """The fleet's share for this process; AIMD may keep the rate below it."""
        self._shares[company_key] = share
        self._apply(company_key)

    def advance(self) -> None:
        """Let AIMD recover every constrained key (called every fraction of a second)."""
        now = self._clock()
        for company_key, aimd in self._aimd.items():
            if aimd.ceiling is not None:
                aimd.advance(now, self._share(company_key))
                self._apply(company_key)

    def constrained(self) -> bool:
        """Some key runs below its share after a 429: :meth:`advance` has work to do."""
        return any(aimd.ceiling is not None for aimd in self._aimd.values())

    def quiet(self) -> bool:
        """Nothing sent since the last :meth:`take_usage` and no key constrained: a tick
        would change nothing, so the fleet budget may tick slowly (idle CPU)."""
        return not self._sends and not self.constrained()

    def rates(self) -> dict[str, KeyRates]:
        """Every key seen so far: share, rate in force, AIMD decreases."""
        keys = set(self._budgets) | set(self._shares) | set(self._aimd)
        return {
            key: KeyRates(self._share(key), self._effective(key), self._aimd_of(key).decreases)
            for key in sorted(keys)
        }

    def rate(self, company_key: str) -> float:
        """The key's rate in force; 0 while its share is lent."""
        return 0.0 if company_key in self._lent else super().rate(company_key)

    def take_usage(self) -> tuple[float, dict[str, Usage]]:
        """Seconds since the last call, and the usage of every key active in them; resets."""
        now = self._clock()
        seconds, self._usage_since = now - self._usage_since, now
        for key in self._waiting:
            self._count_waiting(key, 0)
        keys = {key for key, waited in self._waited.items() if waited > 0} | set(self._sends)
        keys |= {key for key, waiting in self._waiting.items() if waiting > 0}
        usage = {
            key: Usage(
                self._sends.get(key, 0), self._waited.get(key, 0.0), self._waiting.get(key, 0)
            )
            for key in keys
        }
        self._sends, self._waited = {}, {}
        return seconds, usage

    def _count_waiting(self, company_key: str, change: int) -> None:
        """Add the waited caller-seconds up to now, then change the number waiting."""
        now = self._clock()
        waiting = self._waiting.get(company_key, 0)
        since = self._counted_at.get(company_key, now)
        self._waited[company_key] = self._waited.get(company_key, 0.0) + waiting * (now - since)
        self._counted_at[company_key] = now
        self._waiting[company_key] = waiting + change

    def _share(self, company_key: str) -> float:
        share = self._shares.get(company_key)
        if share is None:
            share = self._initial_shares.get(company_key, self._initial_share)
        return share

    def _effective(self, company_key: str) -> float:
        return self._aimd_of(company_key).rate(self._share(company_key))

    def _aimd_of(self, company_key: str) -> Aimd:
        aimd = self._aimd.get(company_key)
        if aimd is None:
            aimd = self._aimd[company_key] = Aimd()
        return aimd

    def _apply(self, company_key: str) -> None:
        effective = self._effective(company_key)
        if effective <= 0:
            self._lent.setdefault(company_key, asyncio.Event())
            return
        if abs(effective - super().rate(company_key)) > 1e-9 * effective:
            self.set_rate(company_key, effective)
        lent = self._lent.pop(company_key, None)
        if lent is not None:
            lent.set()
