"""When to try a failed delivery again: Retry-After, and backoff with full jitter.

Pure, with the clock and the random source handed in, so tests pin both.
Hand-written rather than taken from tenacity or backoff: those libraries run
the retry loop themselves, and the deliverer's loop must also honour the
credentials gate and the per-key rate limiter between attempts; the formula
itself is two lines.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Final

# A Retry-After longer than this is taken as this: a misconfigured proxy asking
# for a day must not park a company key for a day. Five minutes is longer than
# any rate-limit window Vibes could mean, and short enough to notice recovery.
MAX_RETRY_AFTER_SECONDS: Final = 300.0


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    None when absent or unreadable (the caller backs off instead); never
    negative; at most :data:`MAX_RETRY_AFTER_SECONDS`.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit():
        # delta-seconds; a decimal fraction is not in the RFC but is read kindly
        try:
            seconds = float(text)
        except ValueError:
            return None
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may lack the zone
            return None
        seconds = when.timestamp() - now_epoch
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff, full jitter: uniform in ``[0, min(cap, initial * 2**(n-1))]``.

    Full jitter spreads the retries of many events that failed together (an
    outage ends, 64 requests failed at once) across the whole window instead
    of bunching them at its end.
    """

    initial: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if not (self.initial > 0 and self.cap >= self.initial):
            raise ValueError("backoff needs initial > 0 and cap >= initial")

    def ceiling(self, attempt: int) -> float:
        """The largest delay after ``attempt`` consecutive failures (``attempt`` >= 1)."""
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 * initial is past any cap
        return min(self.cap, self.initial * 2.0**exponent)

    def delay(self, attempt: int) -> float:
        """A jittered delay before the retry that follows failure number ``attempt``."""
        return self.rng.uniform(0.0, self.ceiling(attempt))
