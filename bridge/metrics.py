"""Every Prometheus metric of the bridge (spec section 4): one table, one registry, recorders.

The only module that imports ``prometheus_client``, and the only writer of its
series. Three layers:

- :data:`METRICS`, a table of :class:`MetricSpec`: each metric's name, type, help,
  label names and buckets, written once. The registry is built from it, and
  :func:`exported_names` (what the dashboard, alert and metric-name tests check
  against) is derived from it, so a name cannot drift between the two.
- Small recorders with intent-named methods, one per part of the bridge:
  :class:`PipelineRecorder` (records, commits, lag, dead letters, readiness),
  :class:`DeliveryRecorder` (the ``bridge.delivery.DeliveryObserver`` calls and
  delivered events), :class:`CallbackRecorder`, :class:`ListenerRecorder`,
  :class:`FleetRecorder` and :class:`ConfigRecorder`. Service code calls these and
  never a Prometheus object, so how a series is labelled, pre-created at zero or
  removed is decided here (tests/test_metrics.py scans ``bridge/`` for a direct write).
- :class:`BridgeMetrics`, the holder one service instance owns: a registry of its
  own, the recorders on it, and :meth:`~BridgeMetrics.render` for ``/metrics``.

Labels never carry a person's data: topics, partitions, rule names, event types,
HTTP statuses, reasons and company keys only. Every label comes from a bounded
set: the configuration's topics, rules, company keys and declared event types, or
a fixed list of words; nothing a record or a request holds becomes a label value
unless it is in that set (else ``other``). The callers bound the values (the
engine's ``metric_event_type``, ``bridge.vibes.callbacks.bounded_labels``, the
listeners' answer tables); the recorders take them as given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bridge.delivery.companies import CompanyState
from bridge.errors import RetryReason

if TYPE_CHECKING:
    from bridge.mapping.engine import MappedEvent

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST


class Kind(StrEnum):
    """A metric's Prometheus type, spelled as a scrape's ``# TYPE`` line spells it."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric as declared: the only place its name, type, help and labels are written."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    def sample_names(self) -> tuple[str, ...]:
        """The names a scrape shows: counters with ``_total``, histograms as three series."""
        if self.kind is Kind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is Kind.HISTOGRAM:
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


# Vibes answers in tens of milliseconds; retries and outages stretch it to minutes.
_DELIVERY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Record time to acceptance: a live stream is sub-second, a backlog can be hours.
_END_TO_END_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
# The answer must leave within Vibes' two seconds.
_CALLBACK_STORE_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 5)
_WAIT_BUCKETS: Final = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30)

# The ``result`` label's values on ``vibes_bridge_config_reloads_total``.
_RELOAD_SUCCESS: Final = "success"
_RELOAD_FAILURE: Final = "failure"

_C, _G, _H = Kind.COUNTER, Kind.GAUGE, Kind.HISTOGRAM

# ---------------------------------------------------------------------- the table
# The pipeline (the consumer thread and the committer).
RECORDS_CONSUMED: Final = MetricSpec(
    "vibes_bridge_records_consumed", _C, "Records read from Kafka.", ("topic",)
)
RECORDS_UNMATCHED: Final = MetricSpec(
    "vibes_bridge_records_unmatched",
    _C,
    "Records no rule matched (skipped, not an error).",
    ("topic",),
)
RECORDS_COMMITTED: Final = MetricSpec(
    "vibes_bridge_records_committed",
    _C,
    "Records whose offsets were committed (finished: delivered, skipped or dead-lettered).",
    ("topic",),
)
RECORDS_SKIPPED_FINISHED: Final = MetricSpec(
    "vibes_bridge_records_skipped_finished",
    _C,
    "Records skipped without work: the group's commit listed them as finished "
    "past its position (a restart after a stuck record).",
    ("topic",),
)
EVENTS_MAPPED: Final = MetricSpec(
    "vibes_bridge_events_mapped", _C, "Events the rules made from records.", ("rule", "event_type")
)
DEAD_LETTERS: Final = MetricSpec(
    "vibes_bridge_dead_letters",
    _C,
    "Records written to the dead-letter topic and acknowledged, by reason.",
    ("reason",),
)
RECEIPTS: Final = MetricSpec(
    "vibes_bridge_receipts",
    _C,
    "Delivery receipts written to the receipts topic and acknowledged.",
    (),
)
EVENTS_PARKED: Final = MetricSpec(
    "vibes_bridge_events_parked",
    _C,
    "Events of a paused company key written to the parked topic and acknowledged.",
    ("company_key",),
)
PARKED_PENDING: Final = MetricSpec(
    "vibes_bridge_parked_pending",
    _G,
    "Events this process parked that are not delivered yet (the per-key order rule's count).",
    ("company_key",),
)
CONSUMER_LAG: Final = MetricSpec(
    "vibes_bridge_consumer_lag",
    _G,
    "Records between the committed position and the partition's end.",
    ("topic", "partition"),
)
OLDEST_UNFINISHED_AGE: Final = MetricSpec(
    "vibes_bridge_oldest_unfinished_record_age_seconds",
    _G,
    "Seconds the partition's oldest consumed, not yet finished record has waited (0 when none).",
    ("topic", "partition"),
)
CONSUMER_PAUSED: Final = MetricSpec(
    "vibes_bridge_consumer_paused",
    _G,
    "Partitions paused because in-flight work reached its bound.",
)
READY: Final = MetricSpec("vibes_bridge_ready", _G, "1 when the bridge is ready, 0 when not.")
LAST_PROGRESS: Final = MetricSpec(
    "vibes_bridge_loop_last_progress_timestamp_seconds",
    _G,
    "When the consumer loop last completed a turn (Unix time).",
)
# Delivery to the Event API.
EVENTS_DELIVERED: Final = MetricSpec(
    "vibes_bridge_events_delivered",
    _C,
    "Events Vibes accepted (2xx), or already had (409).",
    ("rule", "event_type", "status"),
)
DELIVERY_RETRIES: Final = MetricSpec(
    "vibes_bridge_delivery_retries",
    _C,
    "Delivery attempts that will be retried, by reason.",
    ("reason",),
)
DELIVERY_DURATION: Final = MetricSpec(
    "vibes_bridge_delivery_duration_seconds",
    _H,
    "Duration of one HTTP attempt to the Event API.",
    ("event_type",),
    _DELIVERY_BUCKETS,
)
END_TO_END_LATENCY: Final = MetricSpec(
    "vibes_bridge_end_to_end_latency_seconds",
    _H,
    "Kafka record timestamp to Vibes acceptance.",
    ("event_type",),
    _END_TO_END_BUCKETS,
)
IN_FLIGHT_REQUESTS: Final = MetricSpec(
    "vibes_bridge_in_flight_requests", _G, "HTTP requests to Vibes now open."
)
RATE_LIMIT_WAIT: Final = MetricSpec(
    "vibes_bridge_rate_limit_wait_seconds",
    _H,
    "Time an event waited for its company key's rate budget.",
    ("company_key",),
    _WAIT_BUCKETS,
)
CREDENTIALS_FAILING: Final = MetricSpec(
    "vibes_bridge_credentials_failing",
    _G,
    "1 while Vibes rejects the credentials (401/403) and delivery is paused.",
)
COMPANY_CREDENTIALS_REJECTED: Final = MetricSpec(
    "vibes_bridge_company_credentials_rejected",
    _G,
    "1 while Vibes rejects the company key's credentials (401/403) and its delivery is paused.",
    ("company_key",),
)
COMPANY_STATE: Final = MetricSpec(
    "vibes_bridge_company_state",
    _G,
    "1 for the company key's delivery state (healthy, credentials_rejected, circuit_open, held).",
    ("company_key", "state"),
)
CIRCUIT_OPENS: Final = MetricSpec(
    "vibes_bridge_circuit_opens",
    _C,
    "Times a company key's circuit opened after transient failures in a row.",
    ("company_key",),
)
# The fleet budget.
RATE_SHARE: Final = MetricSpec(
    "vibes_bridge_rate_share_per_second",
    _G,
    "This process's share of the company key's budget (fleet plan).",
    ("company_key",),
)
RATE_EFFECTIVE: Final = MetricSpec(
    "vibes_bridge_rate_effective_per_second",
    _G,
    "The rate in force for the company key: the share, or AIMD's ceiling below it.",
    ("company_key",),
)
RATE_DECREASES: Final = MetricSpec(
    "vibes_bridge_rate_decreases",
    _C,
    "Multiplicative decreases after 429 answers (AIMD), per company key.",
    ("company_key",),
)
FLEET_MEMBERS: Final = MetricSpec(
    "vibes_bridge_fleet_members",
    _G,
    "Members of the consumer group whose budget entries are live.",
)
FLEET_DEGRADED: Final = MetricSpec(
    "vibes_bridge_fleet_degraded",
    _G,
    "1 while the budget topic is unusable and a static share is in force.",
)
# Live reload.
CONFIG_RELOADS: Final = MetricSpec(
    "vibes_bridge_config_reloads",
    _C,
    "Configuration reloads (SIGHUP or the file changing), by result: success or failure.",
    ("result",),
)
CONFIG_INFO: Final = MetricSpec(
    "vibes_bridge_config_info",
    _G,
    "1 for the SHA-256 of the configuration file in force (a hash, never the content).",
    ("sha256",),
)
# The callback receiver.
CALLBACKS: Final = MetricSpec(
    "vibes_bridge_callbacks",
    _C,
    "Event-processed callbacks received from Vibes.",
    ("event_type", "action_type", "status", "status_reason"),
)
CALLBACK_REQUESTS: Final = MetricSpec(
    "vibes_bridge_callback_requests",
    _C,
    "Requests to the callback receiver, by answer (stored, invalid, not_found, "
    "forbidden, too_large, method_not_allowed, unavailable, malformed, timeout).",
    ("answer",),
)
CALLBACK_STORE_DURATION: Final = MetricSpec(
    "vibes_bridge_callback_store_seconds",
    _H,
    "Request received to broker acknowledgement of its record (Vibes waits ~2 s).",
    (),
    _CALLBACK_STORE_BUCKETS,
)
CALLBACK_LATENCY: Final = MetricSpec(
    "vibes_bridge_callback_latency_seconds",
    _H,
    "Kafka record timestamp to its event-processed callback (when debug_data "
    "carries the timestamp).",
    ("action_type",),
    _END_TO_END_BUCKETS,
)
# The two listeners.
MANAGEMENT_REQUESTS: Final = MetricSpec(
    "vibes_bridge_management_requests",
    _C,
    "Requests to the management port, by answer (ok, unavailable, not_found, "
    "method_not_allowed, malformed, other).",
    ("answer",),
)
LISTENER_CONNECTIONS_REFUSED: Final = MetricSpec(
    "vibes_bridge_listener_connections_refused",
    _C,
    "Connections closed at accept, before any byte was read, by listener "
    "(callbacks, management) and reason (connection_limit, address).",
    ("listener", "reason"),
)

METRICS: Final[tuple[MetricSpec, ...]] = (
    RECORDS_CONSUMED,
    RECORDS_UNMATCHED,
    RECORDS_COMMITTED,
    RECORDS_SKIPPED_FINISHED,
    EVENTS_MAPPED,
    DEAD_LETTERS,
    RECEIPTS,
    EVENTS_PARKED,
    PARKED_PENDING,
    CONSUMER_LAG,
    OLDEST_UNFINISHED_AGE,
    CONSUMER_PAUSED,
    READY,
    LAST_PROGRESS,
    EVENTS_DELIVERED,
    DELIVERY_RETRIES,
    DELIVERY_DURATION,
    END_TO_END_LATENCY,
    IN_FLIGHT_REQUESTS,
    RATE_LIMIT_WAIT,
    CREDENTIALS_FAILING,
    COMPANY_CREDENTIALS_REJECTED,
    COMPANY_STATE,
    CIRCUIT_OPENS,
    RATE_SHARE,
    RATE_EFFECTIVE,
    RATE_DECREASES,
    FLEET_MEMBERS,
    FLEET_DEGRADED,
    CONFIG_RELOADS,
    CONFIG_INFO,
    CALLBACKS,
    CALLBACK_REQUESTS,
    CALLBACK_STORE_DURATION,
    CALLBACK_LATENCY,
    MANAGEMENT_REQUESTS,
    LISTENER_CONNECTIONS_REFUSED,
)


def exported_names() -> frozenset[str]:
    """Every sample name the bridge can expose, as a scrape shows it (from :data:`METRICS`).

    Counters appear with ``_total``, histograms with ``_bucket``, ``_sum`` and
    ``_count``; the dashboard and alert tests check their queries against this.
    """
    return frozenset(name for spec in METRICS for name in spec.sample_names())


# ---------------------------------------------------------------------- the registry


class _Families:
    """The Prometheus objects of one registry, built from the table and handed out typed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._built = {spec.name: _build(spec, registry) for spec in METRICS}
        self._claimed: set[str] = set()

    def unclaimed(self) -> set[str]:
        """Rows no recorder took: their series would never move, so a scrape would lie."""
        return set(self._built) - self._claimed

    def _take(self, spec: MetricSpec) -> Counter | Gauge | Histogram:
        self._claimed.add(spec.name)
        return self._built[spec.name]

    def counter(self, spec: MetricSpec) -> Counter:
        built = self._take(spec)
        assert isinstance(built, Counter), spec.name
        return built

    def gauge(self, spec: MetricSpec) -> Gauge:
        built = self._take(spec)
        assert isinstance(built, Gauge), spec.name
        return built

    def histogram(self, spec: MetricSpec) -> Histogram:
        built = self._take(spec)
        assert isinstance(built, Histogram), spec.name
        return built


def _build(spec: MetricSpec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    if spec.kind is Kind.COUNTER:
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind is Kind.GAUGE:
        return Gauge(spec.name, spec.help, spec.labels, registry=registry)
    buckets = spec.buckets if spec.buckets is not None else Histogram.DEFAULT_BUCKETS
    return Histogram(spec.name, spec.help, spec.labels, buckets=buckets, registry=registry)


def _since(timestamp_ms: int, now: float | None) -> float:
    """Seconds from a Kafka timestamp to ``now`` (wall clock); never negative (clock skew)."""
    now = time.time() if now is None else now
    return max(0.0, now - timestamp_ms / 1000)


_Family = TypeVar("_Family", Counter, Gauge, Histogram)


class _Children(Generic[_Family]):
    """A family's labelled children, each looked up once: ``labels()`` takes a lock and
    checks the values on every call (1 to 2 µs, several times per event on the hot
    path). Only for families whose series are never removed; the label sets are the
    registry's own, so the cache grows no further than the exported series."""

    __slots__ = ("_children", "_family")

    def __init__(self, family: _Family) -> None:
        self._family: _Family = family
        self._children: dict[tuple[str, ...], _Family] = {}

    def __call__(self, *values: str) -> _Family:
        child = self._children.get(values)
        if child is None:  # two threads may both create it: labels() returns the same child
            child = self._children[values] = self._family.labels(*values)
        return child


# ---------------------------------------------------------------------- recorders


class PipelineRecorder:
    """Records through the pipeline: consumed, matched or not, committed, dead-lettered; lag."""

    def __init__(self, families: _Families) -> None:
        self._consumed = _Children(families.counter(RECORDS_CONSUMED))
        self._unmatched = families.counter(RECORDS_UNMATCHED)
        self._committed = families.counter(RECORDS_COMMITTED)
        self._skipped_finished = families.counter(RECORDS_SKIPPED_FINISHED)
        self._mapped = _Children(families.counter(EVENTS_MAPPED))
        self._dead_letters = families.counter(DEAD_LETTERS)
        self._receipts = families.counter(RECEIPTS)
        self._parked = families.counter(EVENTS_PARKED)
        self._parked_pending = families.gauge(PARKED_PENDING)
        self._lag = families.gauge(CONSUMER_LAG)
        self._oldest_age = families.gauge(OLDEST_UNFINISHED_AGE)
        self._paused = families.gauge(CONSUMER_PAUSED)
        self._ready = families.gauge(READY)
        self._last_progress = families.gauge(LAST_PROGRESS)

    def consumed(self, topic: str) -> None:
        self._consumed(topic).inc()

    def unmatched(self, topic: str) -> None:
        """A record no rule matched: skipped, not an error."""
        self._unmatched.labels(topic).inc()

    def mapped(self, event: MappedEvent) -> None:
        """An event a rule made; labelled by the rule's declared type (never a rendered one)."""
        self._mapped(event.rule, event.metric_event_type).inc()

    def committed(self, topic: str, count: int) -> None:
        """``count`` offsets of ``topic`` moved by one commit."""
        self._committed.labels(topic).inc(count)

    def skipped_finished(self, topic: str, count: int) -> None:
        """``count`` records of ``topic`` skipped because a commit listed them as finished."""
        self._skipped_finished.labels(topic).inc(count)

    def dead_lettered(self, reason: str) -> None:
        """A dead letter the broker acknowledged (``reason`` is the fixed header word)."""
        self._dead_letters.labels(reason).inc()

    def receipt_written(self) -> None:
        """A delivery receipt the broker acknowledged."""
        self._receipts.inc()

    def parked(self, company_key: str) -> None:
        """An event of a paused company key the broker acknowledged on the parked topic."""
        self._parked.labels(company_key).inc()

    def parked_pending(self, company_key: str, count: int) -> None:
        """Events of ``company_key`` parked by this process and not delivered yet."""
        self._parked_pending.labels(company_key).set(count)

    def lag(self, topic: str, partition: int, lag: int) -> None:
        self._lag.labels(topic, str(partition)).set(lag)

    def oldest_unfinished_age(self, topic: str, partition: int, seconds: float) -> None:
        self._oldest_age.labels(topic, str(partition)).set(seconds)

    def partition_forgotten(self, topic: str, partition: int) -> None:
        """Revoked or lost: its lag and age series go, the new owner exports them now."""
        for gauge in (self._lag, self._oldest_age):
            with contextlib.suppress(KeyError):  # never exported (older prometheus_client raise)
                gauge.remove(topic, str(partition))

    def paused(self, partitions: int) -> None:
        """How many partitions back-pressure holds paused now (0 after resuming)."""
        self._paused.set(partitions)

    def ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def progressed(self, now: float | None = None) -> None:
        """The loop completed a turn: the stall alert compares this to the scrape time."""
        self._last_progress.set(time.time() if now is None else now)


class DeliveryRecorder:
    """Delivery to the Event API: implements ``bridge.delivery.DeliveryObserver``, and
    :meth:`delivered` for the dispatcher."""

    def __init__(self, families: _Families) -> None:
        self._duration = _Children(families.histogram(DELIVERY_DURATION))
        self._retries = families.counter(DELIVERY_RETRIES)
        self._rate_wait = families.histogram(RATE_LIMIT_WAIT)
        self._in_flight = families.gauge(IN_FLIGHT_REQUESTS)
        self._credentials = families.gauge(CREDENTIALS_FAILING)
        self._company_credentials = families.gauge(COMPANY_CREDENTIALS_REJECTED)
        self._company_state = families.gauge(COMPANY_STATE)
        self._circuit_opens = families.counter(CIRCUIT_OPENS)
        self._delivered = _Children(families.counter(EVENTS_DELIVERED))
        self._end_to_end = _Children(families.histogram(END_TO_END_LATENCY))

    def attempt_finished(self, event: MappedEvent, status: int | None, seconds: float) -> None:
        self._duration(event.metric_event_type).observe(seconds)

    def retry_scheduled(self, reason: RetryReason) -> None:
        self._retries.labels(reason.value).inc()

    def rate_limit_waited(self, company_key: str, seconds: float) -> None:
        self._rate_wait.labels(company_key).observe(seconds)

    def in_flight_changed(self, delta: int) -> None:
        self._in_flight.inc(delta)

    def credentials_failing(self, failing: bool) -> None:
        self._credentials.set(1 if failing else 0)

    def company_credentials_rejected(self, company_key: str, rejected: bool) -> None:
        self._company_credentials.labels(company_key).set(1 if rejected else 0)

    def company_state(self, company_key: str, state: CompanyState) -> None:
        """One series per state word: 1 for the key's state, 0 for the others."""
        for word in CompanyState:
            self._company_state.labels(company_key, word.value).set(1 if word is state else 0)

    def circuit_opened(self, company_key: str) -> None:
        self._circuit_opens.labels(company_key).inc()

    def delivered(self, event: MappedEvent, status: int, now: float | None = None) -> None:
        """An event Vibes has; the end-to-end latency needs the record's timestamp."""
        self._delivered(event.rule, event.metric_event_type, str(status)).inc()
        timestamp_ms = event.source.timestamp_ms
        if timestamp_ms is not None:
            latency = _since(timestamp_ms, now)
            self._end_to_end(event.metric_event_type).observe(latency)


class CallbackRecorder:
    """The callback receiver: requests by answer, stored callbacks, time to store."""

    def __init__(self, families: _Families) -> None:
        self._callbacks = families.counter(CALLBACKS)
        self._latency = families.histogram(CALLBACK_LATENCY)
        self._requests = families.counter(CALLBACK_REQUESTS)
        self._store_duration = families.histogram(CALLBACK_STORE_DURATION)

    def receiver_started(self, answers: Iterable[str]) -> None:
        """Expose every answer's request series at zero as soon as the receiver runs.

        The series' presence is how the "callbacks not arriving" alert tells a
        deployment with the receiver from one without, even before Vibes' first
        call; and ``increase()`` then sees the first request of each answer.
        """
        for answer in answers:
            self._requests.labels(answer)

    def answered(self, answer: str, seconds: float | None = None) -> None:
        """A request answered; ``seconds`` to store it when it reached the broker."""
        self._requests.labels(answer).inc()
        if seconds is not None:
            self._store_duration.observe(seconds)

    def stored(
        self, labels: tuple[str, str, str, str], record_ms: int | None, now: float | None = None
    ) -> None:
        """A stored callback, with labels already bounded (``bridge.vibes.callbacks``)."""
        self._callbacks.labels(*labels).inc()
        if record_ms is not None:
            self._latency.labels(labels[1]).observe(_since(record_ms, now))


class ListenerRecorder:
    """What the two listeners refuse at accept, and the management port's answers."""

    def __init__(self, families: _Families) -> None:
        self._refused = families.counter(LISTENER_CONNECTIONS_REFUSED)
        self._management = families.counter(MANAGEMENT_REQUESTS)

    def started(self, listener: str, reasons: Iterable[str]) -> None:
        """Expose the listener's refusal series at zero, so ``increase()`` sees the first."""
        for reason in reasons:
            self._refused.labels(listener, reason)

    def refused(self, listener: str, reason: str) -> None:
        self._refused.labels(listener, reason).inc()

    def management_started(self, answers: Iterable[str]) -> None:
        """Expose every management answer's series at zero, so ``increase()`` sees the first."""
        for answer in answers:
            self._management.labels(answer)

    def management_answered(self, answer: str) -> None:
        self._management.labels(answer).inc()


class FleetRecorder:
    """The fleet budget's plan: per-key rates, live members, degraded mode."""

    def __init__(self, families: _Families) -> None:
        self._share = families.gauge(RATE_SHARE)
        self._effective = families.gauge(RATE_EFFECTIVE)
        self._decreases = families.counter(RATE_DECREASES)
        self._members = families.gauge(FLEET_MEMBERS)
        self._degraded = families.gauge(FLEET_DEGRADED)
        # The limiter keeps a running count; the counter takes only what is new.
        self._decreases_reported: dict[str, int] = {}

    def key_rates(self, company_key: str, share: float, effective: float, decreases: int) -> None:
        """The fleet share and the rate in force; ``decreases`` is the running AIMD count."""
        self._share.labels(company_key).set(share)
        self._effective.labels(company_key).set(effective)
        new = decreases - self._decreases_reported.get(company_key, 0)
        if new > 0:
            self._decreases.labels(company_key).inc(new)
            self._decreases_reported[company_key] = decreases

    def members(self, count: int) -> None:
        self._members.set(count)

    def degraded(self, degraded: bool) -> None:
        self._degraded.set(1 if degraded else 0)


class ConfigRecorder:
    """Live reload: each reload's result, and which file's hash is in force."""

    def __init__(self, families: _Families) -> None:
        self._reloads = families.counter(CONFIG_RELOADS)
        self._info = families.gauge(CONFIG_INFO)
        self._shown: str | None = None

    def in_force(self, sha256: str) -> None:
        """The hash of the file now in force; the previous one's series goes.

        One series only, so ``vibes_bridge_config_info == 1`` joins on the hash a
        fleet runs without a stale hash lingering from before a reload.
        """
        if self._shown is not None and self._shown != sha256:
            with contextlib.suppress(KeyError):
                self._info.remove(self._shown)
        self._shown = sha256
        self._info.labels(sha256).set(1)

    def reload_succeeded(self) -> None:
        self._reloads.labels(_RELOAD_SUCCESS).inc()

    def reload_failed(self) -> None:
        """The file was unreadable or invalid; the previous configuration stays in force."""
        self._reloads.labels(_RELOAD_FAILURE).inc()


class BridgeMetrics:
    """The bridge's metrics on a registry of their own (one per service instance).

    Holds the recorders; a test reads a value back with
    ``registry.get_sample_value`` instead of scraping text.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        families = _Families(self.registry)
        self.pipeline = PipelineRecorder(families)
        self.delivery = DeliveryRecorder(families)
        self.callbacks = CallbackRecorder(families)
        self.listeners = ListenerRecorder(families)
        self.fleet = FleetRecorder(families)
        self.config = ConfigRecorder(families)
        unclaimed = families.unclaimed()
        if unclaimed:  # a programming error: the first test that builds metrics fails
            raise RuntimeError(f"metrics no recorder writes: {sorted(unclaimed)}")

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
