"""The metric names and labels are the spec's (section 4), exactly, and one module writes them."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import bridge.metrics
from bridge.loading import load_bridge
from bridge.mapping.engine import MappedEvent
from bridge.metrics import (
    CONSUMER_LAG,
    DELIVERY_DURATION,
    METRICS,
    BridgeMetrics,
    Kind,
    MetricSpec,
    exported_names,
)
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


def test_every_spec_metric_is_declared_with_its_type_and_labels() -> None:
    """SPEC_METRICS spells counters as scraped (``_total``), the others by family name."""
    table = {
        spec.sample_names()[0] if spec.kind == "counter" else spec.name: spec for spec in METRICS
    }
    for name, (kind, labels) in SPEC_METRICS.items():
        spec = table[name]
        assert (spec.kind, set(spec.labels)) == (kind, labels), name


def test_the_registry_is_built_from_the_table_alone() -> None:
    """Each family a scrape shows is one row of the table: name, type and help."""
    registered = {
        family.name: (family.type, family.documentation)
        for family in BridgeMetrics().registry.collect()
    }
    assert registered == {spec.name: (spec.kind.value, spec.help) for spec in METRICS}
    assert len({spec.name for spec in METRICS}) == len(METRICS)


def test_the_table_labels_and_buckets_reach_the_registry() -> None:
    """A row's label names are the ones a series carries; its buckets the ones scraped."""
    metrics = BridgeMetrics()
    event = _event()
    metrics.delivery.attempt_finished(event, 200, 0.01)
    metrics.pipeline.lag("orders", 3, 7)
    spec_buckets = {str(float(bound)) for bound in DELIVERY_DURATION.buckets or ()}
    samples = {
        sample.name: sample.labels
        for family in metrics.registry.collect()
        for sample in family.samples
    }
    assert set(samples["vibes_bridge_consumer_lag"]) == set(CONSUMER_LAG.labels)
    scraped_buckets = {
        sample.labels["le"]
        for family in metrics.registry.collect()
        if family.name == DELIVERY_DURATION.name
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    assert scraped_buckets == spec_buckets | {"+Inf"}


RUNNING_DOC = Path(__file__).resolve().parents[1] / "docs" / "running.md"


def _documented_form(spec: MetricSpec) -> str:
    """How docs/running.md names a metric: as scraped, with its label names in braces."""
    exposed = spec.sample_names()[0] if spec.kind is Kind.COUNTER else spec.name
    return exposed + ("{" + ",".join(spec.labels) + "}" if spec.labels else "")


@pytest.mark.parametrize("spec", METRICS, ids=lambda spec: spec.name)
def test_every_row_is_documented_with_its_labels(spec: MetricSpec) -> None:
    assert f"`{_documented_form(spec)}`" in RUNNING_DOC.read_text()


def test_every_metric_the_doc_names_is_in_the_table() -> None:
    named = set(re.findall(r"`(vibes_bridge_\w+)", RUNNING_DOC.read_text()))
    families = {spec.name for spec in METRICS}
    assert named - exported_names() - families == set()


@pytest.mark.parametrize("kind", list(Kind))
def test_a_row_no_recorder_writes_is_refused(monkeypatch: pytest.MonkeyPatch, kind: Kind) -> None:
    orphan = MetricSpec("vibes_bridge_orphan", kind, "Nobody writes this.", ("topic",))
    monkeypatch.setattr(bridge.metrics, "METRICS", (*METRICS, orphan))
    with pytest.raises(RuntimeError, match="vibes_bridge_orphan"):
        BridgeMetrics()


def _event() -> MappedEvent:
    record = SourceRecord("orders", 0, 1, b"{}", timestamp_ms=1_000)
    return MappedEvent("rule", "t", "id-1", "key", b"{}", record, "t")


def test_the_oldest_unfinished_age_is_a_gauge_per_partition() -> None:
    metrics = BridgeMetrics()
    metrics.pipeline.oldest_unfinished_age("orders", 0, 12.5)
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
    metrics.callbacks.receiver_started(["stored", "unavailable"])
    assert (
        metrics.registry.get_sample_value(
            "vibes_bridge_callback_requests_total", {"answer": "unavailable"}
        )
        == 0
    )
    metrics.callbacks.answered("stored")
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
            metrics.pipeline.mapped(event)
            metrics.delivery.attempt_finished(event, 200, 0.01)
            metrics.delivery.delivered(event, 200)
    assert len(rendered) == records + 1  # the bodies keep the rendered types
    for name in EVENT_TYPE_METRICS:
        assert len(series(metrics, name)) == 2, name
        assert event_type_labels(metrics, name) == {"other", "Order_Seen"}, name


def test_the_declared_event_types_are_the_literal_ones(write_config: WriteConfig) -> None:
    engine = load_bridge(write_config(TWO_RULES)).engine
    assert engine.declared_event_types() == frozenset({"Order_Seen"})


def test_the_listener_series_exist_at_zero_and_count() -> None:
    metrics = BridgeMetrics()
    metrics.listeners.started("management", ["connection_limit", "address"])
    metrics.listeners.refused("management", "connection_limit")
    metrics.listeners.management_answered("malformed")
    sample = metrics.registry.get_sample_value
    name = "vibes_bridge_listener_connections_refused_total"
    assert sample(name, {"listener": "management", "reason": "address"}) == 0
    assert sample(name, {"listener": "management", "reason": "connection_limit"}) == 1
    assert sample("vibes_bridge_management_requests_total", {"answer": "malformed"}) == 1


# ---------------------------------------------------------------------- one writer
# Service code reaches a series only through a recorder method: ``metrics.<recorder>.<method>``.
# Any other path from a name holding "metrics" (a Prometheus object, a recorder's private
# attribute, ``.labels(``) is a second writer, whose labels and zero series nobody checks.

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("bridge", "bench", "devtools", "scripts")
WRITER = Path("bridge/metrics.py")
# The registry is for reading back (tests, the burst benchmark), never for writing.
REGISTRY_READS = frozenset({"get_sample_value", "collect"})


@functools.cache
def _recorder_methods() -> dict[str, frozenset[str]]:
    """Each public attribute of the holder, with the public methods of its recorder."""
    metrics = BridgeMetrics()
    api: dict[str, frozenset[str]] = {}
    for name in dir(metrics):
        if name.startswith("_"):
            continue
        value = getattr(metrics, name)
        methods = {m for m in dir(type(value)) if not m.startswith("_")}
        api[name] = (
            frozenset(methods) if type(value).__module__ == "bridge.metrics" else frozenset()
        )
    api["registry"] = REGISTRY_READS
    return api


def _identifier(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def direct_writes(source: str, filename: str) -> Iterator[str]:
    """Each place ``source`` touches a series other than through a recorder method."""
    api = _recorder_methods()
    tree = ast.parse(source, filename)
    parents = _parents(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        where = f"{filename}:{node.lineno}"
        if node.attr == "labels" and isinstance(parents.get(node), ast.Call):
            yield f"{where}: .labels("
            continue
        holder = _identifier(node.value)
        if holder is None or "metrics" not in holder.lower() or holder == "bridge":
            continue
        if node.attr not in api:
            yield f"{where}: {holder}.{node.attr}"
            continue
        outer = parents.get(node)
        if not isinstance(outer, ast.Attribute) or outer.value is not node:
            continue  # the recorder itself, passed on (``metrics.delivery``)
        if outer.attr not in api[node.attr]:
            yield f"{where}: {holder}.{node.attr}.{outer.attr}"


def _scanned_files() -> Iterator[Path]:
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.relative_to(ROOT) != WRITER:
                yield path


def test_no_module_but_bridge_metrics_writes_a_series() -> None:
    found = [
        hit
        for path in _scanned_files()
        for hit in direct_writes(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == []


@pytest.mark.parametrize(
    "line",
    [
        "self._metrics.records_consumed.labels(topic).inc()",
        "metrics.pipeline._consumed.labels(topic).inc()",
        "service.metrics.pipeline._ready.set(1)",
        "self._metrics.config_info.remove(sha)",
        "gauge = self._metrics.consumer_lag",
        "counter.labels('orders').inc()",
        "self._metrics.pipeline.made_up(1)",
        "self._request_metrics.inc()",
        "metrics.registry.unregister(collector)",
    ],
)
def test_the_scan_finds_a_direct_write(line: str) -> None:
    """Each way around the recorders is caught (the scan above would pass if it saw nothing)."""
    assert list(direct_writes(line, "bridge/service/example.py"))


@pytest.mark.parametrize(
    "line",
    [
        "self._metrics.pipeline.consumed(topic)",
        "service.metrics.pipeline.ready(True)",
        "deliverer = vibes_delivery(loaded, metrics.delivery)",
        "body = self._metrics.render()",
        "value = metrics.registry.get_sample_value('x')",
        "self.chaos.count_metrics(bridge)",
    ],
)
def test_the_scan_lets_recorder_calls_through(line: str) -> None:
    assert list(direct_writes(line, "bridge/service/example.py")) == []
