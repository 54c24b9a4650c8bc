"""Run the fleet budget: publish this process's wants, read everyone's, set the limiter's shares.

An asyncio task beside delivery. Every tick (a tenth of a second while events
are sent or wait, 0.3 s when the bridge is idle) it counts what the limiter saw
(``bridge.fleet.demand``), reads what arrived on the budget topic (blocking
calls go to a worker thread, so the tick's read timeout is also its pause),
publishes this member's entry every ``fleet.publish_interval_seconds`` and at
once when a backlog is gone or a lent key has work again, and hands the
planner's share per company key to the :class:`AdaptiveLimiter`, which keeps
AIMD's ceiling below it when Vibes answers 429. Without the topic (it cannot be
created or reached) the share is static: ``budget / members of the consumer
group``. Leaving is bounded: the goodbye gets :data:`CLOSE_SECONDS`, then the
process stops without it (the others drop its entry when it expires).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Final, TypeVar, TypeVarTuple

from bridge.config.model import FleetSettings
from bridge.delivery.aimd import AdaptiveLimiter
from bridge.fleet import (
    BudgetTable,
    DemandMeter,
    KeyUsage,
    MalformedEntry,
    SharePlanner,
    decode_entry,
    encode_entry,
)
from bridge.fleet.wire import WireEntry
from bridge.kafka.budget_topic import BudgetLink, BudgetRecord, BudgetTopicUnavailable
from bridge.metrics import BridgeMetrics
from bridge.service.blocking import call_blocking

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

TICK_SECONDS: Final = 0.1
# The tick when nothing was sent since the last publish and AIMD holds no key back:
# ten reads a second (each a hand-off to a worker thread and back) were most of an
# idle bridge's CPU (bench/idle.py). Kept under SETTLE_SECONDS less a produce round
# trip, so members still read within the settle time of each other: an idle member
# that gets work mid-read lowers its share (if another raised) before the other's
# higher share applies. Traffic returns the tick to TICK_SECONDS at the next turn.
IDLE_TICK_SECONDS: Final = 0.3
# Longer than members read apart (a tick, a fetch wait, a produce round trip).
SETTLE_SECONDS: Final = 0.5
_DEGRADED_RETRY_SECONDS: Final = 15.0
# Leaving: the tombstone's flush and the clients' close together get this long.
CLOSE_SECONDS: Final = 5.0
_FLUSH_SECONDS: Final = 3.0


class FleetBudget:
    """This member's part of the group's budget, kept current until cancelled."""

    def __init__(
        self,
        limiter: AdaptiveLimiter,
        metrics: BridgeMetrics,
        *,
        budget: float,
        key_budgets: Mapping[str, float] | None = None,
        settings: FleetSettings,
        group: str,
        link: BudgetLink | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.member = uuid.uuid4().hex
        self._limiter = limiter
        self._metrics = metrics
        self._budget = budget
        # Companies with a requests_per_second of their own; every other key plans `budget`.
        self._key_budgets = dict(key_budgets or {})
        self._settings = settings
        self._group = group
        self._link = link
        # One call on the link at a time. A blocking call outlives the coroutine
        # cancelled while awaiting it (a stopped run's read goes on for up to a
        # tick), so close() must wait for it before closing the clients under it.
        self._link_lock = threading.Lock()
        self._clock = clock
        self._table = BudgetTable(group)
        self._meter = DemandMeter()
        self._planner = SharePlanner(
            self.member,
            budget,
            settle=min(SETTLE_SECONDS, settings.publish_interval_seconds / 2),
            key_budgets=self._key_budgets,
        )
        self._opened = False
        self._static_members: int | None = None
        self._malformed_seen: set[str] = set()
        self._sent_last_tick = True  # until the first tick says otherwise

    @property
    def start_share(self) -> float:
        """The limiter's rate for every key before the plan is known."""
        return self._planner.start_share if self._link is not None else self._budget

    def start_shares(self) -> dict[str, float]:
        """:attr:`start_share` of each company with a budget of its own."""
        if self._link is None:
            return dict(self._key_budgets)
        return {key: self._planner.start_share_for(key) for key in self._key_budgets}

    def set_budget(self, company_key: str, requests_per_second: float) -> None:
        """A reloaded rate for ``company_key``: its group budget, planned from now on.

        The next tick re-plans the key with it (at once without a fleet link).
        """
        self._key_budgets[company_key] = requests_per_second
        if self._link is None:
            self._limiter.set_share(company_key, requests_per_second)

    async def run(self) -> None:
        """Plan until cancelled."""
        if self._link is None:  # fleet.enabled is false: AIMD over the whole budget
            await self._keep_aimd_going()
            return
        next_publish = self._clock()
        next_open = self._clock()
        while True:
            now = self._clock()
            if not self._opened and now >= next_open:
                await self._open_or_degrade()
                next_open = now + _DEGRADED_RETRY_SECONDS
            if not self._opened:
                await asyncio.sleep(TICK_SECONDS)
                self._plan_static()
                continue
            self._count_usage()
            if now >= next_publish:
                await self._publish(self._meter.publish(self._budget, self._key_budgets))
                next_publish = now + self._settings.publish_interval_seconds
            elif self._meter.due_early():  # a backlog gone, or work on a lent key: say so now
                await self._publish(self._meter.publish_early(self._budget, self._key_budgets))
            records = await self._on_link(self._link.read, self._tick(next_publish - now))
            self._apply(records)
            self._plan()

    async def close(self) -> None:
        """Leave: a tombstone lets the others take this member's share without waiting.

        Bounded by :data:`CLOSE_SECONDS`: a broker that does not answer (or a
        client that does not close) must not keep the process from exiting.
        The blocking call then runs on in its daemon thread until the exit.
        """
        if self._link is None or not self._opened:
            return
        try:
            await asyncio.wait_for(
                self._on_link(self._link.close, self.member, _FLUSH_SECONDS), CLOSE_SECONDS
            )
        except TimeoutError:
            log.warning(
                "the budget topic's clients did not close in time; leaving without a goodbye",
                extra={"topic": self._link.topic, "seconds": CLOSE_SECONDS},
            )

    async def _on_link(self, call: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        """``call(*args)`` on a worker thread, after any link call still running."""
        return await call_blocking(self._serialised, call, *args)

    def _serialised(self, call: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        with self._link_lock:
            return call(*args)

    def _tick(self, until_publish: float) -> float:
        """How long this turn's read waits: a tenth of a second while there is traffic
        (a send or a caller waiting in the last tick); when quiet, up to the next
        publish but at most IDLE_TICK_SECONDS (a lent floor's reclaim then waits up to
        that much longer)."""
        if self._sent_last_tick or not self._limiter.quiet():
            return TICK_SECONDS
        return max(TICK_SECONDS, min(IDLE_TICK_SECONDS, until_publish))

    async def _keep_aimd_going(self) -> None:
        while True:
            constrained = self._limiter.constrained()
            await asyncio.sleep(TICK_SECONDS if constrained else IDLE_TICK_SECONDS)
            self._limiter.advance()
            self._report()

    async def _open_or_degrade(self) -> None:
        assert self._link is not None
        try:
            await self._on_link(self._link.open)
        except BudgetTopicUnavailable as problem:
            self._static_members = await self._on_link(self._link.group_members)
            log.error(
                "the budget topic is unusable; a static share of the rate is in force",
                extra={
                    "topic": self._link.topic,
                    "problem": str(problem),
                    "group_members": self._static_members,
                },
            )
            self._metrics.fleet.degraded(True)
            return
        self._opened = True
        self._metrics.fleet.degraded(False)
        log.info("fleet budget: publishing and reading", extra={"topic": self._link.topic})

    def _count_usage(self) -> None:
        seconds, usage = self._limiter.take_usage()
        self._sent_last_tick = any(used.sends or used.waiting for used in usage.values())
        self._meter.add(
            seconds,
            {
                key: KeyUsage(used.sends, used.waited_seconds, seconds, used.waiting)
                for key, used in usage.items()
            },
        )

    async def _publish(self, wants: dict[str, float]) -> None:
        rounded = {key: round(want, 3) for key, want in wants.items()}
        entry = WireEntry(self._group, self._settings.entry_ttl_seconds, rounded, lends=True)
        assert self._link is not None
        await self._on_link(self._link.publish, self.member, encode_entry(entry))

    def _apply(self, records: list[BudgetRecord]) -> None:
        now = self._clock()
        for record in records:
            if record.value is None:
                self._table.remove(record.member)
                continue
            try:
                entry = decode_entry(record.value)
            except MalformedEntry as problem:
                if record.member not in self._malformed_seen:
                    self._malformed_seen.add(record.member)
                    log.warning("skipped a malformed budget entry", extra={"problem": str(problem)})
                continue
            if entry.group == self._group:
                self._table.put(
                    record.member,
                    entry.wants,
                    ttl=entry.ttl_seconds,
                    age=record.age_seconds,
                    now=now,
                    lends=entry.lends,
                )

    def _plan(self) -> None:
        now = self._clock()
        keys = set(self._limiter.rates()) | self._table.company_keys(now)
        for key in keys:
            self._limiter.set_share(key, self._planner.share(self._table, key, now))
        self._limiter.advance()
        self._metrics.fleet.members(len(self._table.live(now)))
        self._report()

    def _plan_static(self) -> None:
        members = self._static_members
        for key in self._limiter.rates():
            # Unknown membership (the admin call failed too): the floor, not the whole budget.
            if members:
                share = self._planner.static_share(members, company_key=key)
            else:
                share = self._planner.start_share_for(key)
            self._limiter.set_share(key, share)
        self._limiter.advance()
        self._report()

    def _report(self) -> None:
        for key, rates in self._limiter.rates().items():
            self._metrics.fleet.key_rates(key, rates.share, rates.effective, rates.decreases)
