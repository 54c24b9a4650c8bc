"""Liveness and readiness, from facts the service keeps up to date (pure, thread-safe enough).

Liveness means the loops are making progress, not merely that the process
exists: a consumer thread stuck for minutes is restarted by the kubelet.
Readiness means this replica is doing its job: subscribed (assigned or waiting
in the group), Vibes accepting the credentials of at least one company key it
delivered to (one company's rejected credentials, open circuit or 429 hold pause
only that company and show on ``vibes_bridge_company_state``, see
docs/isolation.md), the dead-letter topic (and the receipts topic) writable.
Plain attribute writes from two threads are atomic in CPython; no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# A consumer turn takes at most the fetch timeout; revocation and shutdown waits
# are bounded well below this.
LIVENESS_TIMEOUT_SECONDS = 60.0


@dataclass(slots=True)
class Health:
    """What ``/healthz`` and ``/readyz`` answer from."""

    clock: Callable[[], float] = time.monotonic
    started: float = field(default_factory=time.monotonic)
    consumer_turn: float | None = None
    loop_turn: float | None = None
    subscribed: bool = False
    stopping: bool = False
    credentials_rejected: bool = False  # every company key delivered to so far
    dead_letter_topic_missing: bool = False
    dead_letters_failing: bool = False
    receipts_topic_missing: bool = False
    receipts_failing: bool = False

    def consumer_alive(self) -> None:
        self.consumer_turn = self.clock()

    def loop_alive(self) -> None:
        self.loop_turn = self.clock()

    def liveness_problems(self) -> list[str]:
        """Empty when live."""
        now = self.clock()
        problems = []
        for name, turn in (
            ("consumer loop", self.consumer_turn),
            ("delivery loop", self.loop_turn),
        ):
            last = self.started if turn is None else turn
            if now - last > LIVENESS_TIMEOUT_SECONDS:
                problems.append(f"the {name} made no progress for {now - last:.0f} s")
        return problems

    def readiness_problems(self) -> list[str]:
        """Empty when ready."""
        problems = self.liveness_problems()
        if not self.subscribed:
            problems.append("not subscribed to the source topics yet")
        if self.stopping:
            problems.append("shutting down")
        if self.credentials_rejected:
            problems.append("Vibes rejects the credentials (401/403) of every company key")
        if self.dead_letter_topic_missing:
            problems.append("the dead-letter topic does not exist")
        if self.dead_letters_failing:
            problems.append("dead letters cannot be written")
        if self.receipts_topic_missing:
            problems.append("the receipts topic does not exist")
        if self.receipts_failing:
            problems.append("receipts cannot be written")
        return problems
