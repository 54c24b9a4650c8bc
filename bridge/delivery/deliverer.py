"""Deliver one event until Vibes has it, or it can never succeed.

The deliverer owns the retry policy around :class:`VibesClient`'s single attempts:

- transient failures (429, 5xx, timeouts, connection errors) are retried with
  jittered backoff, without a deadline unless ``max_retry_duration`` is set;
  a 429 holds the company key's whole budget in the rate limiter;
- a non-retryable 4xx raises :class:`EventRejected`; 409 counts as delivered;
- each company key has its own gate (``bridge.delivery.companies``) and is
  signed with its own company's credentials (``vibes.companies``): 401/403
  close it until a probe gets through (one task at a time, every
  ``credentials_retry_seconds``, re-reading ``*_file`` credentials first);
  ``circuit.failures`` transient failures in a row open the key's circuit, and
  one event probes it half-open after the open period. Other keys flow on.
  Time spent behind a credentials pause does not count towards
  ``max_retry_duration``, so a credentials outage never turns events into dead
  letters; time behind an open circuit does, like any other outage.

Cancellation propagates from every await: shutdown and partition revocation
cancel in-flight deliveries.

Withdrawal (parking, docs/isolation.md): a caller may pass ``withdraw``, an
asyncio event it sets when the company key's waiting events are to be parked.
While the key is not healthy, an event waiting for its gate, its rate budget or
a backoff then raises :class:`Withdrawn` instead of waiting on; a request already
sent is never withdrawn (so parking cannot double an event), and a withdrawing
event never takes the key's probe: the parked events, replayed without
``withdraw``, probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol, TypeVar

from bridge.delivery.client import VibesClient
from bridge.delivery.companies import CircuitSettings, CompanyState, CompanyStates, Transition
from bridge.delivery.outcomes import (
    CredentialsRejected,
    Delivered,
    DeliveryUnavailable,
    Outcome,
)
from bridge.delivery.ratelimit import Clock, RateLimiter, Sleep, Withdrawn
from bridge.delivery.retry import Backoff
from bridge.errors import EventExpired, EventRejected, ExpiryCode, RetryReason
from bridge.mapping.engine import MappedEvent

log = logging.getLogger(__name__)
_T = TypeVar("_T")


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
        True while any company key's credentials are rejected.
        """

    def company_credentials_rejected(self, company_key: str, rejected: bool) -> None:
        """Called on one company key's transitions: True on its first 401/403, False on
        recovery."""

    def company_state(self, company_key: str, state: CompanyState) -> None:
        """A company key's state, when first seen and on every change."""

    def circuit_opened(self, company_key: str) -> None:
        """The key's circuit opened after transient failures in a row."""


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

    def company_state(self, company_key: str, state: CompanyState) -> None:
        return None

    def circuit_opened(self, company_key: str) -> None:
        return None


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
    first_attempt_ms: int | None = None  # wall clock, for the delivery receipt
    withdraw: asyncio.Event | None = None  # set by the caller: leave instead of waiting


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
        circuit: CircuitSettings | None = None,
        max_in_flight: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        tracer: AttemptTracer = NO_TRACING,
        wall_clock: Clock = time.time,
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
        self._companies = CompanyStates(
            circuit, credentials_retry_seconds=credentials_retry_seconds, clock=clock
        )
        self._gate_changed: dict[str, asyncio.Event] = {}
        # Requests open at once, over every company key: held only for the POST itself,
        # so events waiting for a paused company (or its rate budget) take no place.
        self._requests = asyncio.Semaphore(max_in_flight) if max_in_flight else None
        self._wall_clock = wall_clock

    @property
    def credentials_rejected(self) -> bool:
        """True while every company key seen so far has its credentials rejected.

        With one company key: from the first 401/403 until a probe gets through.
        """
        return self._companies.all_credentials_rejected()

    def company_states(self) -> dict[str, CompanyState]:
        """Every company key delivered to so far, and its state."""
        return self._companies.snapshot()

    def rejected_company_keys(self) -> frozenset[str]:
        """The company keys whose credentials Vibes rejects now."""
        rejected = CompanyState.CREDENTIALS_REJECTED
        return frozenset(key for key, state in self.company_states().items() if state is rejected)

    def company_state(self, company_key: str) -> CompanyState:
        """The key's state now (healthy when never delivered to)."""
        return self._companies.state(company_key)

    def wake(self, company_key: str) -> None:
        """Wake the key's waiting events, so that those whose ``withdraw`` is set leave."""
        self._notify(company_key)

    async def deliver(self, event: MappedEvent, withdraw: asyncio.Event | None = None) -> Delivered:
        """Until Vibes has the event; raises EventRejected or EventExpired when it never will,
        and :class:`Withdrawn` when ``withdraw`` is set while it waits for its paused key."""
        key = event.company_key
        if self._companies.seen(key):
            self._observer.company_state(key, CompanyState.HEALTHY)
        run = _Run(started=self._clock(), withdraw=withdraw)
        while True:
            probing = await self._pass_gate(key, run)
            try:
                outcome = await self._attempt(event, run, probing=probing)
            finally:
                if probing:
                    self._companies.end_probe(key)
                    self._notify(key)
            if outcome is None:
                continue  # the key's gate closed while this attempt waited for its slot
            if isinstance(outcome, Delivered):
                self._changed(self._companies.passed(key, probing=probing))
                return Delivered(
                    outcome.status,
                    run.attempts,
                    run.first_attempt_ms,
                    int(self._wall_clock() * 1000),
                )
            if isinstance(outcome, DeliveryUnavailable):
                self._changed(self._companies.unavailable(key, outcome.reason, probing=probing))
                await self._back_off(event, outcome, run)
            elif isinstance(outcome, CredentialsRejected):
                self._changed(self._companies.credentials_rejected(key), outcome.status)
            else:
                self._changed(self._companies.passed(key, probing=probing))
                raise EventRejected(outcome.status, outcome.response, attempts=run.attempts)

    async def _attempt(self, event: MappedEvent, run: _Run, *, probing: bool) -> Outcome | None:
        """One POST after the key's rate slot; None when credentials failed meanwhile."""
        key = event.company_key
        if probing:
            credentials = self._companies.state(key) is CompanyState.CREDENTIALS_REJECTED
            started = self._clock()
            await self._sleep(self._companies.probe_delay(key))
            if credentials:
                self._client.refresh_credentials(key)
                run.paused += self._clock() - started
        withdraw = run.withdraw
        if withdraw is None:
            waited = await self._limiter.acquire(key)
        else:
            # Held by 429s, the wait for the key's budget may be long: leave when parked.
            def leave() -> bool:
                return withdraw.is_set() and self._companies.state(key) is not CompanyState.HEALTHY

            waited = await self._limiter.acquire(key, leave)
        self._observer.rate_limit_waited(key, waited)
        if not probing and self._companies.blocked(key):
            return None
        if self._requests is None:
            return await self._post(event, run)
        async with self._requests:
            return await self._post(event, run)

    async def _post(self, event: MappedEvent, run: _Run) -> Outcome:
        run.attempts += 1
        if run.first_attempt_ms is None:
            run.first_attempt_ms = int(self._wall_clock() * 1000)
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
        elif run.withdraw is not None:
            await _unless_withdrawn(self._sleep(delay), run.withdraw)
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

    async def _pass_gate(self, key: str, run: _Run) -> bool:
        """Wait while the key is paused; True when this task is to probe it.

        Time behind a credentials pause is not retry time; behind an open circuit it is.
        """
        companies = self._companies
        while companies.blocked(key):
            if run.withdraw is not None and run.withdraw.is_set():
                raise Withdrawn  # before taking the probe: parked events probe (docs/isolation.md)
            if companies.take_probe(key):
                return True
            credentials = companies.state(key) is CompanyState.CREDENTIALS_REJECTED
            started = self._clock()
            changed = self._gate_changed.get(key)
            if changed is None:
                changed = self._gate_changed[key] = asyncio.Event()
            await changed.wait()
            if credentials:
                run.paused += self._clock() - started
        return False

    def _changed(self, transition: Transition | None, status: int | None = None) -> None:
        """Report and log a key's new state; wake its waiting events."""
        if transition is None:
            return
        key, old, new = transition
        self._notify(key)
        self._observer.company_state(key, new)
        credentials = CompanyState.CREDENTIALS_REJECTED
        if credentials in (old, new):
            self._observer.company_credentials_rejected(key, new is credentials)
        if credentials in (old, new) and not self._companies.any_other_in(key, credentials):
            # the process-wide gauge: 1 while any key's credentials are rejected
            self._observer.credentials_failing(new is credentials)
        if new is CompanyState.CREDENTIALS_REJECTED:
            log.error(
                "Vibes rejected the credentials of company key %s (HTTP %s): its delivery is "
                "paused; probing every %g s, re-reading *_file credentials before each probe",
                key,
                status,
                self._credentials_retry_seconds,
            )
        elif new is CompanyState.CIRCUIT_OPEN:
            self._observer.circuit_opened(key)
            log.warning(
                "company key %s failed repeatedly: its circuit is open for %.1f s, "
                "then one event probes it; other company keys go on",
                key,
                self._companies.open_seconds(key),
            )
        elif old is CompanyState.CREDENTIALS_REJECTED:
            log.warning("Vibes accepts the credentials of company key %s again: it resumes", key)
        elif old is CompanyState.CIRCUIT_OPEN:
            log.warning("company key %s answers again: its circuit is closed", key)
        elif new is CompanyState.HELD:
            log.info("company key %s is held by 429 answers", key)

    def _notify(self, key: str) -> None:
        # Wake every waiter of the key once; later waiters wait on a fresh event.
        changed = self._gate_changed.pop(key, None)
        if changed is not None:
            changed.set()


async def _unless_withdrawn(waiting: Awaitable[_T], withdraw: asyncio.Event) -> _T:
    """``waiting``'s result, or :class:`Withdrawn` (``waiting`` cancelled) once ``withdraw``
    is set; only ever wraps a wait, never a request."""
    task = asyncio.ensure_future(waiting)
    if withdraw.is_set():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Withdrawn
    signal = asyncio.ensure_future(withdraw.wait())
    try:
        await asyncio.wait((task, signal), return_when=asyncio.FIRST_COMPLETED)
    finally:
        signal.cancel()
        if not task.done():
            task.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise Withdrawn


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
