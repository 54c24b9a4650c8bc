"""The metric names and labels are the spec's (section 4), exactly."""

from __future__ import annotations

import pytest

from bridge.loading import load_bridge
from bridge.metrics import BridgeMetrics, exported_names
from bridge.records import SourceRecord
from tests.support.configs import WriteConfig

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


# ---------------------------------------------------------------------- bounded label sets

TWO_RULES = """\
rules:
  - name: templated
    topic: shop.orders
    event_type: {template: "order_{status}"}
    recipient: {external_person_id: id}
  - name: literal
    topic: shop.orders
    event_type: Order_Seen
    recipient: {external_person_id: id}
"""
EVENT_TYPE_METRICS = (
    "vibes_bridge_events_mapped_total",
    "vibes_bridge_events_delivered_total",
    "vibes_bridge_delivery_duration_seconds_count",
    "vibes_bridge_end_to_end_latency_seconds_count",
)


def series(metrics: BridgeMetrics, name: str) -> list[str]:
    """The sample lines of ``name`` in the scraped text: one per series."""
    return [
        line
        for line in metrics.render().decode().splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    ]


def event_type_labels(metrics: BridgeMetrics, name: str) -> set[str]:
    return {
        line.split('event_type="', 1)[1].split('"', 1)[0]
        for line in series(metrics, name)
        if 'event_type="' in line
    }


@pytest.mark.parametrize("records", [1, 37, 300])
def test_a_templated_event_type_makes_a_bounded_number_of_series(
    write_config: WriteConfig, records: int
) -> None:
    """Each record renders a new type; the series stay one per rule whatever the count."""
    engine = load_bridge(write_config(TWO_RULES)).engine
    metrics = BridgeMetrics()
    rendered = set()
    for offset in range(records):
        record = SourceRecord("shop.orders", 0, offset, b"{}", timestamp_ms=1)
        result = engine.map({"id": "p", "status": f"s{offset}"}, record)
        for event in result.events:
            rendered.add(event.event_type)
            metrics.mapped(event)
            metrics.attempt_finished(event, 200, 0.01)
            metrics.delivered(event, 200)
    assert len(rendered) == records + 1  # the bodies keep the rendered types
    for name in EVENT_TYPE_METRICS:
        assert len(series(metrics, name)) == 2, name
        assert event_type_labels(metrics, name) == {"other", "Order_Seen"}, name


def test_the_declared_event_types_are_the_literal_ones(write_config: WriteConfig) -> None:
    engine = load_bridge(write_config(TWO_RULES)).engine
    assert engine.declared_event_types() == frozenset({"Order_Seen"})


def test_the_listener_series_exist_at_zero_and_count() -> None:
    metrics = BridgeMetrics()
    metrics.listener_started("management", ["connection_limit", "address"])
    metrics.listener_refused("management", "connection_limit")
    metrics.management_answered("malformed")
    sample = metrics.registry.get_sample_value
    name = "vibes_bridge_listener_connections_refused_total"
    assert sample(name, {"listener": "management", "reason": "address"}) == 0
    assert sample(name, {"listener": "management", "reason": "connection_limit"}) == 1
    assert sample("vibes_bridge_management_requests_total", {"answer": "malformed"}) == 1
