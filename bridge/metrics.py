"""Every Prometheus metric of the bridge (spec section 4), in one registry.

The only module that imports ``prometheus_client``: the pipeline and the delivery
edge report through the small methods here, so the engine stays free of metrics
and a test can read a value without scraping text.

Labels never carry a person's data: topics, partitions, rule names, event types,
HTTP statuses, reasons and company keys only. Every label comes from a bounded
set: the configuration's topics, rules, company keys and declared event types, or
a fixed list of words; nothing a record or a request holds becomes a label value
unless it is in that set (else ``other``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bridge.errors import RetryReason

if TYPE_CHECKING:
    from bridge.mapping.engine import MappedEvent

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# Vibes answers in tens of milliseconds; retries and outages stretch it to minutes.
_DELIVERY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Record time to acceptance: a live stream is sub-second, a backlog can be hours.
_END_TO_END_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# The answer must leave within Vibes' two seconds.
_CALLBACK_STORE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5)
_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)


class BridgeMetrics:
    """The bridge's metrics on a registry of their own (one per service instance)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._decreases_reported: dict[str, int] = {}
        self.records_consumed = Counter(
            "vibes_bridge_records_consumed", "Records read from Kafka.", ["topic"], registry=r
        )
        self.records_unmatched = Counter(
            "vibes_bridge_records_unmatched",
            "Records no rule matched (skipped, not an error).",
            ["topic"],
            registry=r,
        )
        self.records_committed = Counter(
            "vibes_bridge_records_committed",
            "Records whose offsets were committed (finished: delivered, skipped or dead-lettered).",
            ["topic"],
            registry=r,
        )
        self.events_mapped = Counter(
            "vibes_bridge_events_mapped",
            "Events the rules made from records.",
            ["rule", "event_type"],
            registry=r,
        )
        self.events_delivered = Counter(
            "vibes_bridge_events_delivered",
            "Events Vibes accepted (2xx), or already had (409).",
            ["rule", "event_type", "status"],
            registry=r,
        )
        self.delivery_retries = Counter(
            "vibes_bridge_delivery_retries",
            "Delivery attempts that will be retried, by reason.",
            ["reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "vibes_bridge_dead_letters",
            "Records written to the dead-letter topic and acknowledged, by reason.",
            ["reason"],
            registry=r,
        )
        self.delivery_duration = Histogram(
            "vibes_bridge_delivery_duration_seconds",
            "Duration of one HTTP attempt to the Event API.",
            ["event_type"],
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.end_to_end_latency = Histogram(
            "vibes_bridge_end_to_end_latency_seconds",
            "Kafka record timestamp to Vibes acceptance.",
            ["event_type"],
            buckets=_END_TO_END_BUCKETS,
            registry=r,
        )
        self.in_flight_requests = Gauge(
            "vibes_bridge_in_flight_requests", "HTTP requests to Vibes now open.", registry=r
        )
        self.consumer_lag = Gauge(
            "vibes_bridge_consumer_lag",
            "Records between the committed position and the partition's end.",
            ["topic", "partition"],
            registry=r,
        )
        self.oldest_unfinished_age = Gauge(
            "vibes_bridge_oldest_unfinished_record_age_seconds",
            "Seconds the partition's oldest consumed, not yet finished record has waited"
            " (0 when none).",
            ["topic", "partition"],
            registry=r,
        )
        self.consumer_paused = Gauge(
            "vibes_bridge_consumer_paused",
            "Partitions paused because in-flight work reached its bound.",
            registry=r,
        )
        self.rate_limit_wait = Histogram(
            "vibes_bridge_rate_limit_wait_seconds",
            "Time an event waited for its company key's rate budget.",
            ["company_key"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.ready = Gauge(
            "vibes_bridge_ready", "1 when the bridge is ready, 0 when not.", registry=r
        )
        self.credentials_gauge = Gauge(
            "vibes_bridge_credentials_failing",
            "1 while Vibes rejects the credentials (401/403) and delivery is paused.",
            registry=r,
        )
        self.last_progress = Gauge(
            "vibes_bridge_loop_last_progress_timestamp_seconds",
            "When the consumer loop last completed a turn (Unix time).",
            registry=r,
        )
        self.rate_share = Gauge(
            "vibes_bridge_rate_share_per_second",
            "This process's share of the company key's budget (fleet plan).",
            ["company_key"],
            registry=r,
        )
        self.rate_effective = Gauge(
            "vibes_bridge_rate_effective_per_second",
            "The rate in force for the company key: the share, or AIMD's ceiling below it.",
            ["company_key"],
            registry=r,
        )
        self.rate_decreases = Counter(
            "vibes_bridge_rate_decreases",
            "Multiplicative decreases after 429 answers (AIMD), per company key.",
            ["company_key"],
            registry=r,
        )
        self.fleet_members = Gauge(
            "vibes_bridge_fleet_members",
            "Members of the consumer group whose budget entries are live.",
            registry=r,
        )
        self.fleet_degraded = Gauge(
            "vibes_bridge_fleet_degraded",
            "1 while the budget topic is unusable and a static share is in force.",
            registry=r,
        )
        self.config_reloads = Counter(
            "vibes_bridge_config_reloads",
            "Configuration reloads (SIGHUP or the file changing), by result: success or failure.",
            ["result"],
            registry=r,
        )
        self.config_info = Gauge(
            "vibes_bridge_config_info",
            "1 for the SHA-256 of the configuration file in force (a hash, never the content).",
            ["sha256"],
            registry=r,
        )
        self.callbacks = Counter(
            "vibes_bridge_callbacks",
            "Event-processed callbacks received from Vibes.",
            ["event_type", "action_type", "status", "status_reason"],
            registry=r,
        )
        self.callback_requests = Counter(
            "vibes_bridge_callback_requests",
            "Requests to the callback receiver, by answer (stored, invalid, not_found, "
            "forbidden, too_large, method_not_allowed, unavailable, malformed, timeout).",
            ["answer"],
            registry=r,
        )
        self.management_requests = Counter(
            "vibes_bridge_management_requests",
            "Requests to the management port, by answer (ok, unavailable, not_found, "
            "method_not_allowed, malformed, other).",
            ["answer"],
            registry=r,
        )
        self.listener_connections_refused = Counter(
            "vibes_bridge_listener_connections_refused",
            "Connections closed at accept, before any byte was read, by listener "
            "(callbacks, management) and reason (connection_limit, address).",
            ["listener", "reason"],
            registry=r,
        )
        self.callback_store_duration = Histogram(
            "vibes_bridge_callback_store_seconds",
            "Request received to broker acknowledgement of its record (Vibes waits ~2 s).",
            buckets=_CALLBACK_STORE_BUCKETS,
            registry=r,
        )
        self.callback_latency = Histogram(
            "vibes_bridge_callback_latency_seconds",
            "Kafka record timestamp to its event-processed callback (when debug_data "
            "carries the timestamp).",
            ["action_type"],
            buckets=_END_TO_END_BUCKETS,
            registry=r,
        )

    # ------------------------------------------------------------------ delivery observer
    # The methods bridge.delivery.DeliveryObserver asks for.

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        self.delivery_duration.labels(event.metric_event_type).observe(seconds)

    def retry_scheduled(self, reason: RetryReason) -> None:
        self.delivery_retries.labels(reason.value).inc()

    def rate_limit_waited(self, company_key: str, seconds: float) -> None:
        self.rate_limit_wait.labels(company_key).observe(seconds)

    def in_flight_changed(self, delta: int) -> None:
        self.in_flight_requests.inc(delta)

    def credentials_failing(self, failing: bool) -> None:
        self.credentials_gauge.set(1 if failing else 0)

    # ------------------------------------------------------------------ fleet budget

    def key_rates(self, company_key: str, share: float, effective: float, decreases: int) -> None:
        """The fleet share and the rate in force; ``decreases`` is the running AIMD count."""
        self.rate_share.labels(company_key).set(share)
        self.rate_effective.labels(company_key).set(effective)
        new = decreases - self._decreases_reported.get(company_key, 0)
        if new > 0:
            self.rate_decreases.labels(company_key).inc(new)
            self._decreases_reported[company_key] = decreases

    # ------------------------------------------------------------------ pipeline

    def delivered(self, event: MappedEvent, status: int, now: float | None = None) -> None:
        """An event Vibes has; the end-to-end latency needs the record's timestamp."""
        self.events_delivered.labels(event.rule, event.metric_event_type, str(status)).inc()
        timestamp_ms = event.source.timestamp_ms
        if timestamp_ms is not None:
            now = time.time() if now is None else now
            latency = max(0.0, now - timestamp_ms / 1000)
            self.end_to_end_latency.labels(event.metric_event_type).observe(latency)

    def mapped(self, event: MappedEvent) -> None:
        """An event a rule made; labelled by the rule's declared type (never a rendered one)."""
        self.events_mapped.labels(event.rule, event.metric_event_type).inc()

    # ------------------------------------------------------------------ listeners

    def listener_started(self, listener: str, reasons: Iterable[str]) -> None:
        """Expose the listener's refusal series at zero, so ``increase()`` sees the first."""
        for reason in reasons:
            self.listener_connections_refused.labels(listener, reason)

    def listener_refused(self, listener: str, reason: str) -> None:
        self.listener_connections_refused.labels(listener, reason).inc()

    def management_answered(self, answer: str) -> None:
        self.management_requests.labels(answer).inc()

    # ------------------------------------------------------------------ callbacks

    def callback_counted(self, labels: tuple[str, str, str, str], record_ms: int | None) -> None:
        """A stored callback, with labels already bounded (``bridge.vibes.callbacks``)."""
        self.callbacks.labels(*labels).inc()
        if record_ms is not None:
            latency = max(0.0, time.time() - record_ms / 1000)
            self.callback_latency.labels(labels[1]).observe(latency)

    def callback_receiver_started(self, answers: Iterable[str]) -> None:
        """Expose every answer's request series at zero as soon as the receiver runs.

        The series' presence is how the "callbacks not arriving" alert tells a
        deployment with the receiver from one without, even before Vibes' first
        call; and ``increase()`` then sees the first request of each answer.
        """
        for answer in answers:
            self.callback_requests.labels(answer)

    def callback_answered(self, answer: str, seconds: float | None = None) -> None:
        self.callback_requests.labels(answer).inc()
        if seconds is not None:
            self.callback_store_duration.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


def exported_names() -> frozenset[str]:
    """Every sample name the bridge can expose, as a scrape shows it.

    Counters appear with ``_total``, histograms with ``_bucket``, ``_sum`` and
    ``_count``; the dashboard and alert tests check their queries against this.
    """
    metrics = BridgeMetrics()
    names: set[str] = set()
    for family in metrics.registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return frozenset(names)
