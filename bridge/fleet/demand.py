"""What one process wants of a company key's budget, from what its limiter saw.

Two numbers per key and publish window, both cheap to count in the limiter:
the sends, and the seconds callers spent waiting for a slot. By Little's law
the waited seconds over the window is the mean number of callers queued at the
limiter. When callers queue (a mean of one or more), the limiter is what holds
the process back, and the process wants as much as it can get: the whole
budget. Otherwise it wants what it sends, plus headroom to grow into before
the next round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Mean callers waiting for a slot at which the limiter is the bottleneck.
BACKLOGGED_QUEUE: Final = 1.0
# An unhurried member asks for this much more than it sent, to grow into.
HEADROOM: Final = 1.25


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One key's use of the limiter over a window of ``seconds``."""

    sends: int
    waited_seconds: float
    seconds: float


def wanted_rate(usage: KeyUsage, budget: float) -> float:
    """The rate this process would use for the key if it could (0 when idle)."""
    if usage.seconds <= 0:
        return 0.0
    if usage.waited_seconds / usage.seconds >= BACKLOGGED_QUEUE:
        return budget
    return min(budget, usage.sends / usage.seconds * HEADROOM)
