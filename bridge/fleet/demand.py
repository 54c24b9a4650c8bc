"""What one process wants of a company key's budget, from what its limiter saw.

Per key and tick (a tenth of a second) the limiter counts the sends and the
caller-seconds spent waiting for a slot (the area under the queue, so a caller
still waiting counts too). By Little's law the waited seconds over a span is
the mean number of callers queued at the limiter. When callers queue (a mean
of one or more), the limiter is what holds the process back, and the process
wants as much as it can get: the whole budget. Otherwise it wants what it
sends, plus headroom to grow into before the next round.

:class:`DemandMeter` keeps the ticks since the last publish and answers two
questions. *What do I want now?* The state of the last tick decides, not the
window's average: a key queued in the last tick wants the whole budget; one
that no longer queues wants its send rate since the backlog ended (the
window's rate would still count the backlog's sends); one with nothing at all
in the window wants nothing, which lends its floor (``bridge.fleet.shares``).
*Must I publish before the next round?* Yes when what was published no longer
holds in a way that wastes budget or keeps work waiting: a key published as
backlogged that no longer queues (hand its share over now, not a round
later), and a key published as wanting nothing that has work again (take the
lent floor back). Each of those can happen only once per regular round (only
a regular publish claims the budget or lends), so early publishes never flap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# Mean callers waiting for a slot at which the limiter is the bottleneck.
BACKLOGGED_QUEUE: Final = 1.0
# An unhurried member asks for this much more than it sent, to grow into.
HEADROOM: Final = 1.25
# What a key that had work in the window but sent nothing since its backlog
# ended asks for: "still here" (the split raises it to the floor), unlike 0,
# which lends the floor. Three decimals survive the entry's rounding.
ACTIVE_WANT: Final = 0.001


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """A key's use of the limiter over ``seconds``: sends, caller-seconds waited, still waiting."""

    sends: int
    waited_seconds: float
    seconds: float
    waiting: int = 0

    @property
    def backlogged(self) -> bool:
        """Callers queued for a slot, one or more on average: the limiter holds the process back."""
        return self.seconds > 0 and self.waited_seconds / self.seconds >= BACKLOGGED_QUEUE

    @property
    def active(self) -> bool:
        """Anything sent or waited for."""
        return self.sends > 0 or self.waited_seconds > 0 or self.waiting > 0

    def then(self, later: KeyUsage) -> KeyUsage:
        """This span followed by ``later``."""
        return KeyUsage(
            self.sends + later.sends,
            self.waited_seconds + later.waited_seconds,
            self.seconds + later.seconds,
            later.waiting,
        )


NOTHING: Final = KeyUsage(0, 0.0, 0.0)


def wanted_rate(usage: KeyUsage, budget: float) -> float:
    """The rate this process would use for the key if it could (0 when idle)."""
    if usage.seconds <= 0:
        return 0.0
    if usage.backlogged:
        return budget
    return min(budget, usage.sends / usage.seconds * HEADROOM)


class DemandMeter:
    """This process's wants per key from the limiter's ticks since the last regular publish."""

    def __init__(self) -> None:
        self._window: dict[str, KeyUsage] = {}
        # The part of the window after the key's last queued tick.
        self._since_backlog: dict[str, KeyUsage] = {}
        self._last: dict[str, KeyUsage] = {}
        self._published: dict[str, float] = {}
        self._claimed: set[str] = set()  # published as wanting the whole budget

    def add(self, seconds: float, usage: Mapping[str, KeyUsage]) -> None:
        """One tick of ``seconds``: the usage of every key that did anything in it."""
        for key in self._last.keys() | usage.keys():  # every key seen: a quiet one ticks too
            tick = usage.get(key, KeyUsage(0, 0.0, seconds))
            self._window[key] = self._window.get(key, NOTHING).then(tick)
            calm = self._since_backlog.get(key, NOTHING)
            self._since_backlog[key] = NOTHING if tick.backlogged else calm.then(tick)
            self._last[key] = tick

    def publish(
        self, budget: float, key_budgets: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The regular round's wants (keys that want nothing left out); starts a new window.

        ``key_budgets``: the company keys with a budget of their own (``vibes.companies``).
        """
        wants: dict[str, float] = {}
        for key, window in self._window.items():
            if not window.active:
                continue
            own = _budget_of(key, budget, key_budgets)
            wants[key] = own if self._last[key].backlogged else self._calm_want(key, own)
        self._claimed = {key for key in wants if self._last[key].backlogged}
        self._window, self._since_backlog = {}, {}
        return self._remember(wants)

    def due_early(self) -> bool:
        """True when the last publish no longer holds: a backlog gone, or work on a lent key."""
        return bool(self._handed_over() or self._reclaimed())

    def publish_early(
        self, budget: float, key_budgets: Mapping[str, float] | None = None
    ) -> dict[str, float]:
        """The wants with only what made them due changed: the same window goes on.

        A key whose backlog is gone wants its rate since then; a lent key with
        work again wants its floor back (more waits for the regular round, so
        an early publish never claims the budget or lends a floor).
        """
        wants = dict(self._published)
        for key in self._handed_over():
            wants[key] = self._calm_want(key, _budget_of(key, budget, key_budgets))
            self._claimed.discard(key)
        for key in self._reclaimed():
            wants[key] = ACTIVE_WANT
        return self._remember(wants)

    def _handed_over(self) -> list[str]:
        return [key for key in self._claimed if not self._last[key].backlogged]

    def _reclaimed(self) -> list[str]:
        return [
            key for key, tick in self._last.items() if key not in self._published and tick.active
        ]

    def _calm_want(self, key: str, budget: float) -> float:
        return max(wanted_rate(self._since_backlog[key], budget), ACTIVE_WANT)

    def _remember(self, wants: dict[str, float]) -> dict[str, float]:
        self._published = wants
        return dict(wants)


def _budget_of(key: str, budget: float, key_budgets: Mapping[str, float] | None) -> float:
    return budget if key_budgets is None else key_budgets.get(key, budget)
