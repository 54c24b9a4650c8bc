"""The HTTP edge: deliver mapped events to the Vibes Event API.

Never imports the Kafka edge, metrics or aiohttp directly: the service wires
this package to the consumer and reports through :class:`DeliveryObserver`.
"""

from bridge.delivery.client import VibesClient
from bridge.delivery.credentials import CompanyCredentials, CredentialsSource
from bridge.delivery.deliverer import (
    NO_TRACING,
    AttemptSpan,
    AttemptTracer,
    Deliverer,
    DeliveryObserver,
    NullObserver,
)
from bridge.delivery.outcomes import Delivered, outcome_of_exception, outcome_of_response
from bridge.delivery.ratelimit import RateLimiter, Withdrawn
from bridge.delivery.retry import Backoff, parse_retry_after
from bridge.delivery.transport import DEFAULT_TRANSPORT, TransportKind, build_transport

__all__ = [
    "DEFAULT_TRANSPORT",
    "NO_TRACING",
    "AttemptSpan",
    "AttemptTracer",
    "Backoff",
    "CompanyCredentials",
    "CredentialsSource",
    "Delivered",
    "Deliverer",
    "DeliveryObserver",
    "NullObserver",
    "RateLimiter",
    "TransportKind",
    "VibesClient",
    "Withdrawn",
    "build_transport",
    "outcome_of_exception",
    "outcome_of_response",
    "parse_retry_after",
]
