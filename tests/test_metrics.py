"""The metric names and labels are the spec's (section 4), exactly."""

from __future__ import annotations

from bridge.metrics import BridgeMetrics, exported_names

SPEC_METRICS = {
    "vibes_bridge_records_consumed_total": ("counter", {"topic"}),
    "vibes_bridge_records_unmatched_total": ("counter", {"topic"}),
    "vibes_bridge_events_mapped_total": ("counter", {"rule", "event_type"}),
    "vibes_bridge_events_delivered_total": ("counter", {"rule", "event_type", "status"}),
    "vibes_bridge_delivery_retries_total": ("counter", {"reason"}),
    "vibes_bridge_dead_letters_total": ("counter", {"reason"}),
    "vibes_bridge_delivery_duration_seconds": ("histogram", {"event_type"}),
    "vibes_bridge_end_to_end_latency_seconds": ("histogram", {"event_type"}),
    "vibes_bridge_in_flight_requests": ("gauge", set()),
    "vibes_bridge_consumer_lag": ("gauge", {"topic", "partition"}),
    "vibes_bridge_rate_limit_wait_seconds": ("histogram", {"company_key"}),
    "vibes_bridge_ready": ("gauge", set()),
    "vibes_bridge_callbacks_total": (
        "counter",
        {"event_type", "action_type", "status", "status_reason"},
    ),
}


def test_every_spec_metric_is_registered_with_its_type_and_labels() -> None:
    metrics = BridgeMetrics()
    families = {}
    for family in metrics.registry.collect():
        exposed = f"{family.name}_total" if family.type == "counter" else family.name
        families[exposed] = family.type
    for name, (kind, _labels) in SPEC_METRICS.items():
        assert families.get(name) == kind, name
    for attribute in vars(metrics).values():
        labelnames = getattr(attribute, "_labelnames", None)
        metric_name = getattr(attribute, "_name", None)
        if labelnames is None or metric_name is None:
            continue
        kind = getattr(attribute, "_type", "")
        exposed = f"{metric_name}_total" if kind == "counter" else str(metric_name)
        if exposed in SPEC_METRICS:
            assert set(labelnames) == SPEC_METRICS[exposed][1], exposed


def test_the_oldest_unfinished_age_is_a_gauge_per_partition() -> None:
    metrics = BridgeMetrics()
    metrics.oldest_unfinished_age.labels("orders", "0").set(12.5)
    name = "vibes_bridge_oldest_unfinished_record_age_seconds"
    assert name in exported_names()
    sample = metrics.registry.get_sample_value(name, {"topic": "orders", "partition": "0"})
    assert sample == 12.5


def test_exported_names_cover_samples_as_scraped() -> None:
    names = exported_names()
    assert "vibes_bridge_records_consumed_total" in names
    assert "vibes_bridge_delivery_duration_seconds_bucket" in names
    assert "vibes_bridge_ready" in names
    assert "vibes_bridge_records_consumed" not in names


def test_the_receiver_exposes_every_answer_at_zero_before_its_first_request() -> None:
    """Without the receiver the request counter has no series (the alert guard)."""
    metrics = BridgeMetrics()
    assert b"vibes_bridge_callback_requests_total{" not in metrics.render()
    metrics.callback_receiver_started(["stored", "unavailable"])
    assert (
        metrics.registry.get_sample_value(
            "vibes_bridge_callback_requests_total", {"answer": "unavailable"}
        )
        == 0
    )
    metrics.callback_answered("stored")
    assert (
        metrics.registry.get_sample_value(
            "vibes_bridge_callback_requests_total", {"answer": "stored"}
        )
        == 1
    )
