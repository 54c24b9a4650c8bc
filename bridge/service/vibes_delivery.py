"""The delivery path to Vibes as both `run` and `replay` build it, from a loaded file.

One definition, so that a replayed dead letter goes through exactly what the
service uses: the same client settings, rate budget and retry policy.
"""

from __future__ import annotations

from typing import NamedTuple

from bridge.config.model import BridgeConfig, VibesSettings
from bridge.delivery import (
    NO_TRACING,
    AttemptTracer,
    CompanyCredentials,
    Deliverer,
    DeliveryObserver,
    VibesClient,
)
from bridge.delivery.aimd import AdaptiveLimiter
from bridge.delivery.companies import CircuitSettings
from bridge.loading import LoadedBridge


class VibesDelivery(NamedTuple):
    """The parts a caller may need to reach: the client to close, the limiter to retune."""

    client: VibesClient
    limiter: AdaptiveLimiter
    deliverer: Deliverer


def circuit_settings(settings: BridgeConfig) -> CircuitSettings:
    """``delivery.circuit``, with ``enabled`` decided when the file leaves it out."""
    circuit = settings.delivery.circuit
    enabled = circuit.enabled
    if enabled is None:
        enabled = settings.isolates_companies()
    return CircuitSettings(
        failures=circuit.failures,
        open_seconds=circuit.open_seconds,
        max_open_seconds=circuit.max_open_seconds,
        enabled=enabled,
    )


def company_rates(vibes: VibesSettings) -> dict[str, float]:
    """The companies with a ``requests_per_second`` of their own, and that rate."""
    return {
        key: company.requests_per_second
        for key, company in vibes.companies.items()
        if company.requests_per_second is not None
    }


def vibes_delivery(
    loaded: LoadedBridge, observer: DeliveryObserver, tracer: AttemptTracer = NO_TRACING
) -> VibesDelivery:
    """Client, per-company-key limiter and deliverer for ``loaded``'s ``vibes`` and ``delivery``.

    ``tracer`` makes each attempt's span (``run`` with tracing on; replay traces nothing).
    """
    settings = loaded.settings
    client = VibesClient(
        base_url=settings.vibes.base_url,
        api_version=settings.vibes.api_version,
        timeout_seconds=settings.vibes.timeout_seconds,
        credentials=CompanyCredentials.from_settings(settings.vibes, loaded.path),
        tls=loaded.vibes_tls,
        max_connections=settings.delivery.max_in_flight,
        company_tls=loaded.company_tls,
    )
    # AIMD under 429 for run and replay alike; run's fleet budget sets its shares.
    limiter = AdaptiveLimiter(
        settings.vibes.requests_per_second, key_rates=company_rates(settings.vibes)
    )
    deliverer = Deliverer(
        client,
        limiter,
        observer=observer,
        max_retry_duration=settings.delivery.max_retry_duration,
        circuit=circuit_settings(settings),
        max_in_flight=settings.delivery.max_in_flight,
        tracer=tracer,
    )
    return VibesDelivery(client, limiter, deliverer)
