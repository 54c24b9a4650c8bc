"""Each company key's delivery state: healthy, credentials rejected, circuit open, or held.

One company's failure pauses only its own deliveries. The deliverer asks this
table whether a key's events may go, and tells it each attempt's outcome:

- ``credentials_rejected``: a 401/403 for the key. Its events wait; one of them
  probes every ``credentials_retry_seconds`` (the deliverer re-reads ``*_file``
  credentials first). A probe that gets through (2xx, 409, or a non-retryable
  4xx) makes the key healthy; a transient failure during a probe proves nothing.
- ``circuit_open``: ``failures`` transient failures (5xx, timeout, connection) in
  a row for the key. Its events wait for ``open_seconds``; then one probes
  (half-open). A probe with any answer but a transient failure closes the
  circuit; a failed one opens it again for twice as long, up to
  ``max_open_seconds``.
- ``held``: a 429 for the key. Nothing waits here (the rate limiter holds the
  key's budget for Retry-After); the state is for the gauge and the logs, and
  ends with the key's next answer that is not a 429 or a transient failure.

Pure, with an injected clock: the state machine is tested without sockets or
sleeps. Hand-written rather than a circuit-breaker library (pybreaker,
aiobreaker): those wrap a call and raise while open, whereas here waiting
events must queue behind one probe, the credentials pause shares the same
gate, and 429s must not count as failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from bridge.errors import RetryReason


class CompanyState(StrEnum):
    """A company key's state; the value is the ``state`` label of the gauge."""

    HEALTHY = "healthy"
    CREDENTIALS_REJECTED = "credentials_rejected"
    CIRCUIT_OPEN = "circuit_open"
    HELD = "held"


BLOCKING = frozenset({CompanyState.CREDENTIALS_REJECTED, CompanyState.CIRCUIT_OPEN})
"""States in which a key's events wait for a probe."""


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """When a company key's circuit opens and how long it stays open."""

    failures: int = 5
    open_seconds: float = 1.0
    max_open_seconds: float = 30.0
    # Off: transient failures and 429s never pause the key (each event retries on
    # its own, as with one company); 401/403 still close its credentials gate.
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.failures < 1 or not 0 < self.open_seconds <= self.max_open_seconds:
            raise ValueError("a circuit needs failures >= 1 and 0 < open_seconds <= max")


class Transition(NamedTuple):
    """A key's state changed from ``old`` to ``new``."""

    company_key: str
    old: CompanyState
    new: CompanyState


@dataclass(slots=True)
class _Company:
    state: CompanyState = CompanyState.HEALTHY
    failures: int = 0  # transient failures in a row
    opens: int = 0  # times the circuit opened in a row (without a passing probe)
    open_until: float = 0.0
    probing: bool = False


class CompanyStates:
    """The state of every company key seen so far."""

    def __init__(
        self,
        circuit: CircuitSettings | None = None,
        *,
        credentials_retry_seconds: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._circuit = circuit if circuit is not None else CircuitSettings()
        self._credentials_retry_seconds = credentials_retry_seconds
        self._clock = clock
        self._companies: dict[str, _Company] = {}

    def seen(self, company_key: str) -> bool:
        """Start tracking ``company_key``; True the first time (the caller reports it healthy)."""
        if company_key in self._companies:
            return False
        self._companies[company_key] = _Company()
        return True

    def state(self, company_key: str) -> CompanyState:
        company = self._companies.get(company_key)
        return CompanyState.HEALTHY if company is None else company.state

    def snapshot(self) -> dict[str, CompanyState]:
        """Every key seen so far and its state."""
        return {key: company.state for key, company in self._companies.items()}

    def blocked(self, company_key: str) -> bool:
        """True while the key's events wait for a probe."""
        company = self._companies.get(company_key)
        return company is not None and company.state in BLOCKING

    def any_other_in(self, company_key: str, state: CompanyState) -> bool:
        """True when a key other than ``company_key`` is in ``state``."""
        return any(
            company.state is state for key, company in self._companies.items() if key != company_key
        )

    def all_credentials_rejected(self) -> bool:
        """True when every key seen so far has its credentials rejected (and there is one)."""
        companies = self._companies.values()
        return bool(companies) and all(
            company.state is CompanyState.CREDENTIALS_REJECTED for company in companies
        )

    # ------------------------------------------------------------------ probes

    def take_probe(self, company_key: str) -> bool:
        """True when the key is blocked and nobody probes it yet: the caller probes."""
        company = self._company(company_key)
        if company.state not in BLOCKING or company.probing:
            return False
        company.probing = True
        return True

    def end_probe(self, company_key: str) -> None:
        self._company(company_key).probing = False

    def probe_delay(self, company_key: str) -> float:
        """How long the prober waits before its attempt."""
        company = self._company(company_key)
        if company.state is CompanyState.CREDENTIALS_REJECTED:
            return self._credentials_retry_seconds
        if company.state is CompanyState.CIRCUIT_OPEN:
            return max(0.0, company.open_until - self._clock())
        return 0.0

    # ------------------------------------------------------------------ outcomes

    def passed(self, company_key: str, *, probing: bool) -> Transition | None:
        """An answer that is not a 401/403, a 429 or a transient failure.

        Only a probe ends a pause: an answer to a request sent before the pause
        began proves nothing about now.
        """
        company = self._company(company_key)
        company.failures = 0
        if company.state in BLOCKING and not probing:
            return None
        company.opens = 0
        return self._move(company_key, company, CompanyState.HEALTHY)

    def credentials_rejected(self, company_key: str) -> Transition | None:
        company = self._company(company_key)
        company.failures = 0
        return self._move(company_key, company, CompanyState.CREDENTIALS_REJECTED)

    def unavailable(
        self, company_key: str, reason: RetryReason, *, probing: bool
    ) -> Transition | None:
        """A 429 or a transient failure; may hold the key or open its circuit."""
        company = self._company(company_key)
        if not self._circuit.enabled:
            return None
        if reason is RetryReason.STATUS_429:
            if company.state is CompanyState.HEALTHY or (
                probing and company.state is CompanyState.CIRCUIT_OPEN
            ):
                # The endpoint answers; the limiter holds the key for Retry-After.
                company.failures = company.opens = 0
                return self._move(company_key, company, CompanyState.HELD)
            return None
        if company.state is CompanyState.CREDENTIALS_REJECTED:
            return None  # a probe that got no answer proves nothing about the credentials
        company.failures += 1
        if company.state is CompanyState.CIRCUIT_OPEN:
            if probing:  # half-open probe failed: open again, for longer
                self._open(company)
            return None
        if company.failures < self._circuit.failures:
            return None
        self._open(company)
        return self._move(company_key, company, CompanyState.CIRCUIT_OPEN)

    def _open(self, company: _Company) -> None:
        circuit = self._circuit
        seconds = min(
            circuit.max_open_seconds, circuit.open_seconds * 2.0 ** min(company.opens, 32)
        )
        company.opens += 1
        company.open_until = self._clock() + seconds

    def open_seconds(self, company_key: str) -> float:
        """Seconds the key's open circuit has left (0 unless open)."""
        company = self._company(company_key)
        if company.state is not CompanyState.CIRCUIT_OPEN:
            return 0.0
        return max(0.0, company.open_until - self._clock())

    def _company(self, company_key: str) -> _Company:
        company = self._companies.get(company_key)
        if company is None:
            company = self._companies[company_key] = _Company()
        return company

    @staticmethod
    def _move(company_key: str, company: _Company, new: CompanyState) -> Transition | None:
        old = company.state
        if old is new:
            return None
        company.state = new
        return Transition(company_key, old, new)
