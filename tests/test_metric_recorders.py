"""The recorders of bridge/metrics.py: each method's effect, read back from the registry."""

from __future__ import annotations

import pytest

from bridge.errors import RetryReason
from bridge.mapping.engine import OTHER_EVENT_TYPE, MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.records import SourceRecord
from bridge.service.dispatch import FanOut


def event(
    *, rendered: str = "order_shipped", declared: str = "order_shipped", timestamp_ms: int | None
) -> MappedEvent:
    record = SourceRecord("orders", 2, 40, b"{}", timestamp_ms=timestamp_ms)
    return MappedEvent("shipping", rendered, "id-1", "acme", b"{}", record, declared)


def value(metrics: BridgeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


# ---------------------------------------------------------------------- pipeline


@pytest.mark.parametrize("times", [1, 3])
def test_pipeline_counts_records_by_topic(times: int) -> None:
    metrics = BridgeMetrics()
    for _ in range(times):
        metrics.pipeline.consumed("orders")
        metrics.pipeline.unmatched("orders")
        metrics.pipeline.committed("orders", 5)
        metrics.pipeline.dead_lettered("mapping_error")
    assert value(metrics, "vibes_bridge_records_consumed_total", topic="orders") == times
    assert value(metrics, "vibes_bridge_records_unmatched_total", topic="orders") == times
    assert value(metrics, "vibes_bridge_records_committed_total", topic="orders") == 5 * times
    assert value(metrics, "vibes_bridge_dead_letters_total", reason="mapping_error") == times
    assert value(metrics, "vibes_bridge_records_consumed_total", topic="other") is None


@pytest.mark.parametrize(
    ("rendered", "declared"),
    [("order_shipped", "order_shipped"), ("order_s1", OTHER_EVENT_TYPE), ("x" * 300, "other")],
)
def test_mapped_and_delivered_label_by_the_declared_type(rendered: str, declared: str) -> None:
    """A rendered type never becomes a label: a template's events count as ``other``."""
    metrics = BridgeMetrics()
    made = event(rendered=rendered, declared=declared, timestamp_ms=None)
    metrics.pipeline.mapped(made)
    metrics.delivery.attempt_finished(made, 202, 0.02)
    metrics.delivery.delivered(made, 202)
    labels = {"rule": "shipping", "event_type": declared}
    assert value(metrics, "vibes_bridge_events_mapped_total", **labels) == 1
    assert value(metrics, "vibes_bridge_events_delivered_total", **labels, status="202") == 1
    assert value(metrics, "vibes_bridge_delivery_duration_seconds_count", event_type=declared) == 1
    if rendered != declared:
        assert rendered.encode() not in metrics.render()


@pytest.mark.parametrize("partition", [0, 7])
def test_lag_and_age_are_per_partition_and_go_when_forgotten(partition: int) -> None:
    metrics = BridgeMetrics()
    metrics.pipeline.lag("orders", partition, 12)
    metrics.pipeline.oldest_unfinished_age("orders", partition, 3.5)
    labels = {"topic": "orders", "partition": str(partition)}
    assert value(metrics, "vibes_bridge_consumer_lag", **labels) == 12
    age = "vibes_bridge_oldest_unfinished_record_age_seconds"
    assert value(metrics, age, **labels) == 3.5
    metrics.pipeline.partition_forgotten("orders", partition)
    assert value(metrics, "vibes_bridge_consumer_lag", **labels) is None
    assert value(metrics, age, **labels) is None


def test_forgetting_a_partition_never_exported_is_harmless() -> None:
    metrics = BridgeMetrics()
    metrics.pipeline.lag("orders", 0, 1)
    metrics.pipeline.partition_forgotten("orders", 9)
    metrics.pipeline.partition_forgotten("payments", 0)
    assert value(metrics, "vibes_bridge_consumer_lag", topic="orders", partition="0") == 1


@pytest.mark.parametrize(("ready", "expected"), [(True, 1), (False, 0)])
def test_readiness_paused_partitions_and_progress(ready: bool, expected: int) -> None:
    metrics = BridgeMetrics()
    metrics.pipeline.ready(ready)
    metrics.pipeline.paused(4)
    metrics.pipeline.progressed(now=1_700_000_000.0)
    assert value(metrics, "vibes_bridge_ready") == expected
    assert value(metrics, "vibes_bridge_consumer_paused") == 4
    assert value(metrics, "vibes_bridge_loop_last_progress_timestamp_seconds") == 1_700_000_000.0
    metrics.pipeline.paused(0)
    assert value(metrics, "vibes_bridge_consumer_paused") == 0


# ---------------------------------------------------------------------- delivery


def test_the_delivery_observer_calls() -> None:
    metrics = BridgeMetrics()
    recorder = metrics.delivery
    for reason in (RetryReason.STATUS_429, RetryReason.STATUS_429, RetryReason.TIMEOUT):
        recorder.retry_scheduled(reason)
    recorder.rate_limit_waited("acme", 0.3)
    recorder.in_flight_changed(1)
    recorder.in_flight_changed(1)
    recorder.in_flight_changed(-1)
    recorder.credentials_failing(True)
    assert value(metrics, "vibes_bridge_delivery_retries_total", reason="status_429") == 2
    assert value(metrics, "vibes_bridge_delivery_retries_total", reason="timeout") == 1
    assert value(metrics, "vibes_bridge_rate_limit_wait_seconds_sum", company_key="acme") == 0.3
    assert value(metrics, "vibes_bridge_in_flight_requests") == 1
    assert value(metrics, "vibes_bridge_credentials_failing") == 1
    recorder.credentials_failing(False)
    assert value(metrics, "vibes_bridge_credentials_failing") == 0


@pytest.mark.parametrize(
    ("timestamp_ms", "now", "latency"),
    [(1_000_000, 1_003.5, 3.5), (5_000_000, 1_000.0, 0.0)],  # a clock behind the broker: 0
)
def test_end_to_end_latency_from_the_record_timestamp(
    timestamp_ms: int, now: float, latency: float
) -> None:
    metrics = BridgeMetrics()
    metrics.delivery.delivered(event(timestamp_ms=timestamp_ms), 200, now=now)
    name = "vibes_bridge_end_to_end_latency_seconds_sum"
    assert value(metrics, name, event_type="order_shipped") == latency


def test_no_latency_without_a_record_timestamp() -> None:
    metrics = BridgeMetrics()
    metrics.delivery.delivered(event(timestamp_ms=None), 409)
    name = "vibes_bridge_end_to_end_latency_seconds_count"
    assert value(metrics, name, event_type="order_shipped") is None
    labels = {"rule": "shipping", "event_type": "order_shipped", "status": "409"}
    assert value(metrics, "vibes_bridge_events_delivered_total", **labels) == 1


def test_a_fan_out_tells_every_observer_in_order() -> None:
    """Replay's report and the metrics both hear of each delivered event."""
    metrics = BridgeMetrics()
    heard: list[tuple[str, int]] = []

    class Report:
        def delivered(self, made: MappedEvent, status: int) -> None:
            heard.append((made.event_id, status))

    fan_out = FanOut(metrics.delivery, Report())
    for status in (200, 202, 409):
        fan_out.delivered(event(timestamp_ms=None), status)
    assert heard == [("id-1", 200), ("id-1", 202), ("id-1", 409)]
    labels = {"rule": "shipping", "event_type": "order_shipped"}
    for answered in ("200", "202", "409"):
        name = "vibes_bridge_events_delivered_total"
        assert value(metrics, name, **labels, status=answered) == 1


# ---------------------------------------------------------------------- callbacks, listeners


def test_callbacks_stored_with_and_without_a_record_timestamp() -> None:
    metrics = BridgeMetrics()
    labels = ("order_shipped", "push", "delivered", "other")
    metrics.callbacks.stored(labels, None)
    metrics.callbacks.stored(labels, 1_000_000, now=1_002.0)
    keys = ("event_type", "action_type", "status", "status_reason")
    assert (
        value(metrics, "vibes_bridge_callbacks_total", **dict(zip(keys, labels, strict=True))) == 2
    )
    latency = "vibes_bridge_callback_latency_seconds"
    assert value(metrics, f"{latency}_count", action_type="push") == 1
    assert value(metrics, f"{latency}_sum", action_type="push") == 2.0


def test_callback_answers_and_store_time() -> None:
    metrics = BridgeMetrics()
    metrics.callbacks.receiver_started(["stored", "invalid", "timeout"])
    assert value(metrics, "vibes_bridge_callback_requests_total", answer="timeout") == 0
    metrics.callbacks.answered("stored", 0.05)
    metrics.callbacks.answered("invalid")
    assert value(metrics, "vibes_bridge_callback_requests_total", answer="stored") == 1
    assert value(metrics, "vibes_bridge_callback_requests_total", answer="invalid") == 1
    assert value(metrics, "vibes_bridge_callback_store_seconds_count") == 1


@pytest.mark.parametrize("listener", ["management", "callbacks"])
def test_listener_series_exist_at_zero_before_the_first(listener: str) -> None:
    metrics = BridgeMetrics()
    metrics.listeners.started(listener, ["connection_limit", "address"])
    metrics.listeners.management_started(["ok", "other"])
    refused = "vibes_bridge_listener_connections_refused_total"
    assert value(metrics, refused, listener=listener, reason="address") == 0
    assert value(metrics, "vibes_bridge_management_requests_total", answer="other") == 0
    metrics.listeners.refused(listener, "address")
    metrics.listeners.management_answered("ok")
    assert value(metrics, refused, listener=listener, reason="address") == 1
    assert value(metrics, "vibes_bridge_management_requests_total", answer="ok") == 1


# ---------------------------------------------------------------------- fleet, configuration


@pytest.mark.parametrize(
    ("running_counts", "total"),
    [((0, 0), 0), ((1, 1, 1), 1), ((1, 3, 3, 4), 4), ((2, 1), 2)],  # a lower count adds nothing
)
def test_rate_decreases_count_only_what_is_new(running_counts: tuple[int, ...], total: int) -> None:
    metrics = BridgeMetrics()
    for count in running_counts:
        metrics.fleet.key_rates("acme", 10.0, 7.5, count)
    decreases = value(metrics, "vibes_bridge_rate_decreases_total", company_key="acme")
    assert (decreases or 0) == total
    assert value(metrics, "vibes_bridge_rate_share_per_second", company_key="acme") == 10.0
    assert value(metrics, "vibes_bridge_rate_effective_per_second", company_key="acme") == 7.5


@pytest.mark.parametrize(("degraded", "expected"), [(True, 1), (False, 0)])
def test_fleet_members_and_degraded(degraded: bool, expected: int) -> None:
    metrics = BridgeMetrics()
    metrics.fleet.members(3)
    metrics.fleet.degraded(degraded)
    assert value(metrics, "vibes_bridge_fleet_members") == 3
    assert value(metrics, "vibes_bridge_fleet_degraded") == expected


@pytest.mark.parametrize(
    "hashes",
    [("a" * 64,), ("a" * 64, "b" * 64), ("a" * 64, "a" * 64), ("a" * 64, "b" * 64, "a" * 64)],
)
def test_one_config_hash_series_at_a_time(hashes: tuple[str, ...]) -> None:
    metrics = BridgeMetrics()
    for sha256 in hashes:
        metrics.config.in_force(sha256)
    shown = [
        sample.labels["sha256"]
        for family in metrics.registry.collect()
        if family.name == "vibes_bridge_config_info"
        for sample in family.samples
    ]
    assert shown == [hashes[-1]]


def test_reload_results_are_counted_apart() -> None:
    metrics = BridgeMetrics()
    metrics.config.reload_failed()
    metrics.config.reload_failed()
    metrics.config.reload_succeeded()
    assert value(metrics, "vibes_bridge_config_reloads_total", result="failure") == 2
    assert value(metrics, "vibes_bridge_config_reloads_total", result="success") == 1
