"""The spans themselves, exported to memory: parents, HTTP attributes, and no person data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id

from bridge.config.model import TracingSettings
from bridge.delivery.outcomes import Delivered, DeliveryUnavailable, Rejected
from bridge.errors import RetryReason
from bridge.loading import load_bridge
from bridge.records import SourceRecord
from bridge.service.stages import prepare
from bridge.tracing import NO_TRACING, start_tracing
from bridge.tracing.otel import OtelTracing
from bridge.vibes.callbacks import bounded_labels, parse_callback
from tests.support.configs import WriteConfig

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
# Person data a record may hold: none of it may reach a span.
PERSON = {
    "id": "cust-98765",
    "first_name": "Alice-Unique",
    "phone": "+12125550123",
    "order": "ord-secret-4242",
}
RULES = """\
rules:
  - name: traced
    topic: shop.orders
    event_type: order_update
    event_id: {template: "evt-{order}-{id}"}
    recipient:
      external_person_id: id
      mdn: phone
    event_data:
      first_name: first_name
    debug_data:
      traceparent: {trace: traceparent}
"""


@pytest.fixture
def exported() -> Iterator[tuple[OtelTracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OtelTracing(provider, vibes_base_url="https://vibes.test/api/", group_id="g"), exporter
    provider.shutdown()


def _record(headers: tuple[tuple[str, bytes | None], ...] = ()) -> SourceRecord:
    return SourceRecord(
        "shop.orders", 3, 41, orjson.dumps(PERSON), key=PERSON["id"].encode(), headers=headers
    )


def _values(span: ReadableSpan) -> list[str]:
    values: list[Any] = [span.name, *(span.attributes or {}).values()]
    for event in span.events:
        values.extend([event.name, *(event.attributes or {}).values()])
    if span.status.description:
        values.append(span.status.description)
    return [str(value) for value in values]


def test_a_record_span_is_a_child_of_its_traceparent_header(exported: Any) -> None:
    tracing, exporter = exported
    span = tracing.record_started(_record((("other", b"x"), ("traceparent", PARENT.encode()))))
    assert span.ids is not None
    assert span.ids.trace_id == TRACE_ID
    span.finished(None)
    [finished] = exporter.get_finished_spans()
    assert finished.kind is SpanKind.CONSUMER
    assert finished.parent is not None
    assert format_span_id(finished.parent.span_id) == "00f067aa0ba902b7"
    assert format_trace_id(finished.context.trace_id) == TRACE_ID
    own = format_span_id(finished.context.span_id)
    assert span.ids.traceparent == f"00-{TRACE_ID}-{own}-01"
    assert finished.attributes is not None
    assert finished.attributes["messaging.kafka.offset"] == 41
    assert finished.attributes["vibes_bridge.held"] is True


@pytest.mark.parametrize(
    "header", [b"not a traceparent", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", b"x" * 5000]
)
def test_a_bad_or_oversized_traceparent_starts_a_new_trace(exported: Any, header: bytes) -> None:
    tracing, exporter = exported
    tracing.record_started(_record((("traceparent", header),))).finished(None)
    [finished] = exporter.get_finished_spans()
    assert finished.parent is None


def test_attempt_spans_follow_the_http_conventions(exported: Any) -> None:
    tracing, exporter = exported
    record_span = tracing.record_started(_record((("traceparent", PARENT.encode()),)))
    event = _event(record_span.ids)
    outcomes = [
        DeliveryUnavailable(RetryReason.STATUS_5XX, status=503),
        DeliveryUnavailable(RetryReason.TIMEOUT),
        Rejected(400, ""),
        None,
        Delivered(200, attempts=5),
    ]
    sent = []
    for attempt, outcome in enumerate(outcomes, start=1):
        span = tracing.attempt_started(event, attempt)
        sent.append(dict(span.headers))
        span.finished(outcome)
    record_span.finished(None)
    attempts = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(attempts) == 5
    record = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.CONSUMER)
    for span, headers in zip(attempts, sent, strict=True):
        assert span.parent is not None
        assert span.parent.span_id == record.context.span_id
        own = format_span_id(span.context.span_id)
        assert headers == {"traceparent": f"00-{TRACE_ID}-{own}-01"}
        attributes = span.attributes or {}
        assert span.name == "POST /companies/{company_key}/events"
        assert attributes["http.request.method"] == "POST"
        assert attributes["url.full"] == "https://vibes.test/api/companies/acme/events"
        assert attributes["server.address"] == "vibes.test"
        assert attributes["server.port"] == 443
    errors = [(s.attributes or {}).get("error.type") for s in attempts]
    assert errors == ["503", "timeout", "400", "cancelled", None]
    statuses = [(s.attributes or {}).get("http.response.status_code") for s in attempts]
    assert statuses == [503, None, 400, None, 200]
    assert [s.status.status_code for s in attempts][-1] is StatusCode.UNSET
    assert "http.request.resend_count" not in (attempts[0].attributes or {})
    assert (attempts[1].attributes or {})["http.request.resend_count"] == 1


def test_no_person_data_in_any_span(exported: Any, write_config: WriteConfig) -> None:
    """A record full of person data, mapped, delivered, dead-lettered and called back:
    no value of it appears in a span name, attribute, event or status."""
    tracing, exporter = exported
    loaded = load_bridge(write_config(RULES))
    record = _record((("traceparent", PARENT.encode()), ("customer", PERSON["phone"].encode())))
    span = tracing.record_started(record)
    prepared = prepare(
        record, loaded.decoders, loaded.engine, max_event_age_seconds=None, now_ms=0, trace=span.ids
    )
    span.finished(prepared)
    [event] = prepared.events
    assert PERSON["first_name"].encode() in event.body  # the body does hold it
    tracing.attempt_started(event, 1).finished(Rejected(400, f"bad mdn {PERSON['phone']}"))
    callback = parse_callback(_callback_body(event.event_id, orjson.loads(event.body)))
    tracing.callback_received(callback, bounded_labels(callback, frozenset({"order_update"})))
    broken = tracing.record_started(SourceRecord("shop.orders", 3, 42, b"{not json " + b"x" * 9))
    broken.finished(
        prepare(
            SourceRecord("shop.orders", 3, 42, orjson.dumps(PERSON)[:-1]),
            loaded.decoders,
            loaded.engine,
            max_event_age_seconds=None,
            now_ms=0,
        )
    )
    spans = exporter.get_finished_spans()
    assert {s.kind for s in spans} == {SpanKind.CONSUMER, SpanKind.CLIENT}
    assert len(spans) == 4  # record, attempt, callback, the undecodable record
    secrets = [*PERSON.values(), event.event_id]
    for finished in spans:
        for value in _values(finished):
            for secret in secrets:
                assert secret not in value, (finished.name, value)


def test_a_callback_joins_the_trace_its_debug_data_names(exported: Any) -> None:
    tracing, exporter = exported
    body = {"traceparent": PARENT, "rule": "traced"}
    callback = parse_callback(_callback_body("evt-1", {"debug_data": body}, failed=True))
    tracing.callback_received(callback, bounded_labels(callback, frozenset()))
    [span] = exporter.get_finished_spans()
    assert format_trace_id(span.context.trace_id) == TRACE_ID
    assert span.parent is not None
    assert format_span_id(span.parent.span_id) == "00f067aa0ba902b7"
    assert [event.name for event in span.events] == ["person_not_subscribed"]
    assert span.status.status_code is StatusCode.ERROR


@pytest.mark.parametrize("debug", [None, {}, {"traceparent": "nonsense"}, {"traceparent": 7}])
def test_a_callback_without_a_trace_makes_no_span(exported: Any, debug: Any) -> None:
    tracing, exporter = exported
    event: dict[str, Any] = {} if debug is None else {"debug_data": debug}
    callback = parse_callback(_callback_body("evt-1", event))
    tracing.callback_received(callback, bounded_labels(callback, frozenset()))
    assert exporter.get_finished_spans() == ()


def test_tracing_is_off_unless_enabled_and_not_disabled_by_the_environment() -> None:
    on = TracingSettings(enabled=True, endpoint="http://127.0.0.1:9")
    assert start_tracing(TracingSettings(), vibes_base_url="http://x", group_id="g") is NO_TRACING
    disabled = start_tracing(
        on, vibes_base_url="http://x", group_id="g", environ={"OTEL_SDK_DISABLED": "true"}
    )
    assert disabled is NO_TRACING
    tracing = start_tracing(on, vibes_base_url="http://x", group_id="g", environ={})
    assert isinstance(tracing, OtelTracing)
    tracing.shutdown(0.1)


def test_the_service_name_is_the_file_s_then_otel_s_then_the_bridge_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def name(settings: TracingSettings) -> object:
        tracing = start_tracing(settings, vibes_base_url="http://x", group_id="g", environ={})
        assert isinstance(tracing, OtelTracing)
        tracing.shutdown(0.1)
        return tracing.resource.attributes["service.name"]

    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    assert name(TracingSettings(enabled=True)) == "vibes-bridge"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert name(TracingSettings(enabled=True)) == "from-env"
    assert name(TracingSettings(enabled=True, service_name="from-file")) == "from-file"


def _event(trace: Any) -> Any:
    from bridge.mapping.engine import MappedEvent

    return MappedEvent(
        "traced", "order_update", "evt-x", "acme", b"{}", _record(), "order_update", trace
    )


def _callback_body(event_id: str, event: dict[str, Any], *, failed: bool = False) -> bytes:
    action = {"type": "routing", "status": "processing", "status_reason": "accepted"}
    if failed:
        action = {"type": "routing", "status": "failed", "status_reason": "person_not_subscribed"}
    return orjson.dumps(
        {
            "callback_type": "event_processed",
            "event_processed": {
                "event_id": event_id,
                "event_type": "order_update",
                "event_data": {"first_name": PERSON["first_name"]},
                "debug_data": event.get("debug_data"),
                "action": action,
            },
        }
    )
