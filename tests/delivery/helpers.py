"""Shared pieces of the delivery tests: events, a recording observer, a deliverer on a mock."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field

import httpx
import orjson

from bridge.delivery import (
    NO_TRACING,
    AttemptTracer,
    Backoff,
    CompanyCredentials,
    CredentialsSource,
    Deliverer,
    RateLimiter,
    VibesClient,
)
from bridge.errors import RetryReason
from bridge.mapping.engine import MappedEvent
from bridge.records import SourceRecord
from tests.delivery.virtual_time import VirtualTime

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


def mapped(event_id: str = "e-1", company_key: str = "demo", **body: object) -> MappedEvent:
    """A valid event for ``company_key``; ``body`` replaces top-level fields."""
    document: dict[str, object] = {
        "event_id": event_id,
        "event_type": "order_shipped",
        "event_data": {"external_person_id": "person-1"},
    }
    document.update(body)
    source = SourceRecord(topic="shop.shipments", partition=0, offset=7, value=b"{}")
    return MappedEvent(
        "rule-a", "order_shipped", event_id, company_key, orjson.dumps(document), source
    )


@dataclass
class RecordingObserver:
    """Everything the deliverer reported, in order."""

    statuses: list[int | None] = field(default_factory=list)
    retries: Counter[RetryReason] = field(default_factory=Counter)
    waits: list[tuple[str, float]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    credentials: list[bool] = field(default_factory=list)
    company_credentials: list[tuple[str, bool]] = field(default_factory=list)

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        self.statuses.append(status)

    def retry_scheduled(self, reason: RetryReason) -> None:
        self.retries[reason] += 1

    def rate_limit_waited(self, company_key: str, seconds: float) -> None:
        self.waits.append((company_key, seconds))

    def in_flight_changed(self, delta: int) -> None:
        self.in_flight += delta
        self.most_in_flight = max(self.most_in_flight, self.in_flight)

    def credentials_failing(self, failing: bool) -> None:
        self.credentials.append(failing)

    def company_credentials_rejected(self, company_key: str, rejected: bool) -> None:
        self.company_credentials.append((company_key, rejected))


def mock_client(
    handler: Handler,
    credentials: CredentialsSource | CompanyCredentials | None = None,
    base_url: str = "https://vibes.test",
) -> VibesClient:
    return VibesClient(
        base_url=base_url,
        api_version="2",
        timeout_seconds=5.0,
        credentials=credentials or CredentialsSource.fixed("user", "secret-pass"),
        transport=httpx.MockTransport(handler),
    )


@dataclass
class Rig:
    """A deliverer on a mock transport in virtual time."""

    time: VirtualTime
    observer: RecordingObserver
    limiter: RateLimiter
    deliverer: Deliverer
    client: VibesClient


def rig(
    handler: Handler,
    *,
    rate: float = 1000.0,
    max_retry_duration: float | None = None,
    credentials: CredentialsSource | CompanyCredentials | None = None,
    credentials_retry_seconds: float = 15.0,
    time: VirtualTime | None = None,
    tracer: AttemptTracer = NO_TRACING,
) -> Rig:
    time = time or VirtualTime()
    observer = RecordingObserver()
    limiter = RateLimiter(rate, clock=time.clock, sleep=time.sleep)
    client = mock_client(handler, credentials)
    deliverer = Deliverer(
        client,
        limiter,
        observer=observer,
        max_retry_duration=max_retry_duration,
        backoff=Backoff(initial=0.5, cap=30.0, rng=random.Random(3)),
        credentials_retry_seconds=credentials_retry_seconds,
        clock=time.clock,
        sleep=time.sleep,
        tracer=tracer,
    )
    return Rig(time, observer, limiter, deliverer, client)


def json_answer(
    status: int, document: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(document or {}), headers=headers)
