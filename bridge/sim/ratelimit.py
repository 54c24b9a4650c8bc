"""The per-company request budget that turns excess requests into 429.

Vibes limits inbound events per company account; a token bucket per company
key reproduces that: a steady ``rate`` with room for a short burst. The clock is
injected so the bucket can be tested without waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens per second, holding at most ``capacity``; one token per request."""

    __slots__ = ("_clock", "_stamp", "_tokens", "capacity", "rate")

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def take(self) -> float:
        """Take one token; answer 0 when granted, else the seconds until one is due.

        A refused request takes nothing, so a client hammering the limit does
        not push its own recovery further away.
        """
        now = self._clock()
        tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate


class RateLimiter:
    """One bucket per company key, so one account's load never throttles another."""

    __slots__ = ("_buckets",)

    def __init__(
        self, rate: float, burst: float, keys: Iterable[str], clock: Clock = time.monotonic
    ) -> None:
        capacity = burst if burst > 0 else rate
        self._buckets = {key: TokenBucket(rate, capacity, clock) for key in keys}

    def retry_after(self, key: str) -> int:
        """0 when the request may go on, else the whole seconds for ``Retry-After``.

        ``Retry-After`` only carries whole seconds, so any wait rounds up and
        is at least 1: a client that obeys it never comes back too early.
        """
        wait = self._buckets[key].take()
        if wait <= 0:
            return 0
        return max(1, math.ceil(wait))
