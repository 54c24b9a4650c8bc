"""Deliver one event until Vibes has it, or it can never succeed.

The deliverer owns the retry policy around :class:`VibesClient`'s single attempts:

- transient failures (429, 5xx, timeouts, connection errors) are retried with
  jittered backoff, without a deadline unless ``max_retry_duration`` is set;
  a 429 holds the company key's whole budget in the rate limiter;
- a non-retryable 4xx raises :class:`EventRejected`; 409 counts as delivered;
- 401/403 close the company key's credentials gate (each key is signed with its
  own company's credentials, ``vibes.companies``): one task at a time per key
  probes every ``credentials_retry_seconds`` (re-reading that company's
  ``*_file`` credentials first) and the key's deliveries resume when a probe
  gets through; other keys are not held. Time spent behind the gate does not
  count towards ``max_retry_duration``, so a credentials outage never turns
  events into dead letters.

Cancellation propagates from every await: shutdown and partition revocation
cancel in-flight deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Protocol

from bridge.delivery.client import VibesClient
from bridge.delivery.outcomes import (
    CredentialsRejected,
    Delivered,
    DeliveryUnavailable,
    Outcome,
)
from bridge.delivery.ratelimit import Clock, RateLimiter, Sleep
from bridge.delivery.retry import Backoff
from bridge.errors import EventExpired, EventRejected, ExpiryCode, RetryReason
from bridge.mapping.engine import MappedEvent

log = logging.getLogger(__name__)


class DeliveryObserver(Protocol):
    """What the deliverer reports; the metrics' delivery recorder implements it."""

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        """One HTTP attempt ended; ``status`` is None when there was no answer."""

    def retry_scheduled(self, reason: RetryReason) -> None:
        """A transient failure will be retried."""

    def rate_limit_waited(self, company_key: str, seconds: float) -> None:
        """Time an attempt waited for its key's rate budget (0 when none)."""

    def in_flight_changed(self, delta: int) -> None:
        """+1 when a request starts, -1 when it ends."""

    def credentials_failing(self, failing: bool) -> None:
        """Called on transitions only: True when a first company key gets a 401/403,
        False when no key's credentials are rejected any more.

        Named after the gauge it feeds (``vibes_bridge_credentials_failing``, a name
        the spec fixes); everywhere else the bridge's word is "credentials rejected".
        """

    def company_credentials_rejected(self, company_key: str, rejected: bool) -> None:
        """Called on one company key's transitions: True on its first 401/403, False on
        recovery."""


class NullObserver:
    """Reports nothing: for tools and benchmarks that need no metrics."""

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        return None

    def retry_scheduled(self, reason: RetryReason) -> None:
        return None

    def rate_limit_waited(self, company_key: str, seconds: float) -> None:
        return None

    def in_flight_changed(self, delta: int) -> None:
        return None

    def credentials_failing(self, failing: bool) -> None:
        return None

    def company_credentials_rejected(self, company_key: str, rejected: bool) -> None:
        return None


@dataclass(slots=True)
class _Gate:
    """One company key's credentials gate."""

    rejected: bool = False
    probing: bool = False  # one task at a time probes while credentials fail
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        # Wake every waiter once; later waiters wait on a fresh event.
        self.changed.set()
        self.changed = asyncio.Event()


class AttemptSpan(Protocol):
    """One attempt's trace span (``bridge/tracing``), from before the POST to its outcome."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The trace context to send with the request (``traceparent``)."""

    def finished(self, outcome: Outcome | None) -> None:
        """The attempt ended with ``outcome``; None when it was cancelled."""


class AttemptTracer(Protocol):
    """Traces attempts: a span for each, or None when tracing is off."""

    def attempt_started(self, event: MappedEvent, attempt: int) -> AttemptSpan | None: ...


class _NoTracing:
    def attempt_started(self, event: MappedEvent, attempt: int) -> AttemptSpan | None:
        return None


NO_TRACING: Final[AttemptTracer] = _NoTracing()


@dataclass(slots=True)
class _Run:
    """One event's delivery so far."""

    started: float
    attempts: int = 0
    transient_failures: int = 0
    paused: float = 0.0  # seconds behind the credentials gate: not retry time


class Deliverer:
    """Retries one event's delivery as the outcome of each attempt says."""

    def __init__(
        self,
        client: VibesClient,
        limiter: RateLimiter,
        *,
        observer: DeliveryObserver,
        max_retry_duration: float | timedelta | None,
        backoff: Backoff | None = None,
        credentials_retry_seconds: float = 15.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        tracer: AttemptTracer = NO_TRACING,
    ) -> None:
        self._client = client
        self._tracer = tracer
        self._limiter = limiter
        self._observer = observer
        if isinstance(max_retry_duration, timedelta):
            max_retry_duration = max_retry_duration.total_seconds()
        self._max_retry_duration = max_retry_duration
        self._backoff = backoff if backoff is not None else Backoff()
        self._credentials_retry_seconds = credentials_retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._gates: dict[str, _Gate] = {}

    @property
    def credentials_rejected(self) -> bool:
        """True while some company key's credentials are rejected (401/403, no probe through)."""
        return any(gate.rejected for gate in self._gates.values())

    def rejected_company_keys(self) -> frozenset[str]:
        """The company keys whose credentials Vibes rejects now."""
        return frozenset(key for key, gate in self._gates.items() if gate.rejected)

    async def deliver(self, event: MappedEvent) -> Delivered:
        """Until Vibes has the event; raises EventRejected or EventExpired when it never will."""
        run = _Run(started=self._clock())
        gate = self._gate(event.company_key)
        while True:
            probing = await self._pass_credentials_gate(gate, run)
            try:
                outcome = await self._attempt(event, gate, run, probing=probing)
            finally:
                if probing:
                    gate.probing = False
                    gate.notify()
            if outcome is None:
                continue  # the gate closed while this attempt waited for its slot
            if probing and not isinstance(outcome, CredentialsRejected | DeliveryUnavailable):
                self._open_gate(event.company_key, gate)
            if isinstance(outcome, Delivered):
                return Delivered(status=outcome.status, attempts=run.attempts)
            if isinstance(outcome, DeliveryUnavailable):
                await self._back_off(event, outcome, run)
            elif isinstance(outcome, CredentialsRejected):
                self._close_gate(event.company_key, gate, outcome)
            else:
                raise EventRejected(outcome.status, outcome.response, attempts=run.attempts)

    async def _attempt(
        self, event: MappedEvent, gate: _Gate, run: _Run, *, probing: bool
    ) -> Outcome | None:
        """One POST after the key's rate slot; None when credentials failed meanwhile."""
        if probing:
            started = self._clock()
            await self._sleep(self._credentials_retry_seconds)
            self._client.refresh_credentials(event.company_key)
            run.paused += self._clock() - started
        waited = await self._limiter.acquire(event.company_key)
        self._observer.rate_limit_waited(event.company_key, waited)
        if gate.rejected and not probing:
            return None
        run.attempts += 1
        span = self._tracer.attempt_started(event, run.attempts)
        self._observer.in_flight_changed(1)
        started = self._clock()
        outcome: Outcome | None = None
        try:
            outcome = await self._client.post_event(
                event.company_key, event.body, None if span is None else span.headers
            )
        finally:
            self._observer.in_flight_changed(-1)
            if span is not None:
                span.finished(outcome)
        seconds = self._clock() - started
        self._observer.attempt_finished(event, outcome.status, seconds)
        if log.isEnabledFor(logging.DEBUG):
            _log_attempt(event, run.attempts, outcome, seconds)
        return outcome

    async def _back_off(self, event: MappedEvent, outcome: DeliveryUnavailable, run: _Run) -> None:
        """Wait before the next attempt, or raise EventExpired when that would pass the deadline.

        A 429 holds the key's whole budget (every event on it waits in the
        limiter), for Retry-After when Vibes sent one; other failures only
        delay this event, so other keys and events flow on.
        """
        run.transient_failures += 1
        delay = outcome.retry_after
        if delay is None:
            delay = self._backoff.delay(run.transient_failures)
        self._expire_if_past_deadline(outcome, run, delay)
        self._observer.retry_scheduled(outcome.reason)
        if outcome.reason is RetryReason.STATUS_429:
            self._limiter.hold(event.company_key, delay)
        else:
            await self._sleep(delay)

    def _expire_if_past_deadline(
        self, outcome: DeliveryUnavailable, run: _Run, delay: float
    ) -> None:
        if self._max_retry_duration is None:
            return
        elapsed = self._clock() - run.started - run.paused
        if elapsed + delay <= self._max_retry_duration:
            return
        message = (
            f"Vibes still unavailable ({outcome.reason.value}) after {run.attempts} attempts "
            f"over {elapsed:.1f} s; max_retry_duration is {self._max_retry_duration:g} s"
        )
        raise EventExpired(ExpiryCode.MAX_RETRY_DURATION, message, attempts=run.attempts)

    def _gate(self, company_key: str) -> _Gate:
        gate = self._gates.get(company_key)
        if gate is None:
            gate = self._gates[company_key] = _Gate()
        return gate

    async def _pass_credentials_gate(self, gate: _Gate, run: _Run) -> bool:
        """Wait while the key's credentials fail; True when this task is to probe them."""
        if not gate.rejected:
            return False
        started = self._clock()
        try:
            while gate.rejected:
                if not gate.probing:
                    gate.probing = True
                    return True
                await gate.changed.wait()
            return False
        finally:
            run.paused += self._clock() - started

    def _close_gate(self, company_key: str, gate: _Gate, outcome: CredentialsRejected) -> None:
        if gate.rejected:
            return
        first = not self.credentials_rejected
        gate.rejected = True
        gate.notify()
        self._observer.company_credentials_rejected(company_key, True)
        if first:
            self._observer.credentials_failing(True)
        # The company key names an account, not a person: it may be logged.
        log.error(
            "Vibes rejected the credentials (HTTP %d) of company key %s: its delivery is "
            "paused; probing every %g s, re-reading *_file credentials before each probe",
            outcome.status,
            company_key,
            self._credentials_retry_seconds,
        )

    def _open_gate(self, company_key: str, gate: _Gate) -> None:
        if not gate.rejected:
            return
        gate.rejected = False
        gate.notify()
        self._observer.company_credentials_rejected(company_key, False)
        if not self.credentials_rejected:
            self._observer.credentials_failing(False)
        log.warning(
            "Vibes accepts the credentials of company key %s again: delivery resumes",
            company_key,
        )


def _log_attempt(event: MappedEvent, attempt: int, outcome: Outcome, seconds: float) -> None:
    # Coordinates, not the event_id: a user's event_id template may hold person data.
    source = event.source
    log.debug(
        "attempt %d for %s[%d]@%d (rule %s): %s in %.3f s",
        attempt,
        source.topic,
        source.partition,
        source.offset,
        event.rule,
        outcome.status or type(outcome).__name__,
        seconds,
    )
