"""OpenTelemetry's side of tracing: the SDK, the OTLP/HTTP exporter, the spans.

The only module that imports OpenTelemetry, and only when ``tracing.enabled``
(``bridge.tracing.start_tracing``). Spans carry the bridge's own names and
Kafka's coordinates, never a record's or an event's values: no key, no event id
(a user's template may hold person data), no body, no callback's ``event_data``.

Configuration: the file's keys when given, otherwise the SDK's standard
``OTEL_*`` variables (endpoint, headers, timeout, sampler, resource, batch
processor), otherwise the SDK's defaults. W3C trace context only, read and
written by the API's ``TraceContextTextMapPropagator``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from bridge.config.model import TracingSettings
from bridge.delivery.outcomes import DeliveryUnavailable, Outcome
from bridge.mapping.engine import MappedEvent
from bridge.records import SourceRecord, TraceIds
from bridge.tracing import RecordSpan, Tracing
from bridge.vibes.api import events_path
from bridge.vibes.callbacks import ProcessedCallback

if TYPE_CHECKING:
    from bridge.service.stages import PreparedRecord

_DEFAULT_SERVICE_NAME: Final = "vibes-bridge"
_INSTRUMENTATION: Final = "vibes-bridge"
_TRACEPARENT: Final = "traceparent"
_TRACE_HEADERS: Final = frozenset({"traceparent", "tracestate"})
# W3C: a traceparent is 55 characters, a tracestate at most 512 (32 members); a
# longer header is not trace context, and is not parsed.
_TRACE_HEADER_LIMIT: Final = 512
# The path as a template (url.template, and the span's name): events_path quotes braces.
_EVENTS_ROUTE: Final = events_path("company_key").replace("company_key", "{company_key}")
_PROPAGATOR: Final = TraceContextTextMapPropagator()


class OtelTracing(Tracing):
    """Spans through one private tracer provider (the process's global one is left alone)."""

    enabled = True

    def __init__(self, provider: TracerProvider, *, vibes_base_url: str, group_id: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer(_INSTRUMENTATION)
        self._base_url = vibes_base_url.rstrip("/")
        server = urlsplit(self._base_url)
        self._server: dict[str, str | int] = {"server.address": server.hostname or ""}
        self._server["server.port"] = server.port or (443 if server.scheme == "https" else 80)
        self._group_id = group_id

    @classmethod
    def start(cls, settings: TracingSettings, *, vibes_base_url: str, group_id: str) -> OtelTracing:
        """A provider exporting in batches over OTLP/HTTP, as ``settings`` and ``OTEL_*`` say."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        sampler: Sampler | None = None  # the SDK reads OTEL_TRACES_SAMPLER(_ARG)
        if settings.sample_ratio is not None:
            sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))
        # The run shuts it down within its own deadline (shutdown); the SDK's exit
        # hook would flush to an unreachable collector for as long as it likes.
        provider = TracerProvider(
            sampler=sampler, resource=_resource(settings), shutdown_on_exit=False
        )
        endpoint = None  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT
        if settings.endpoint is not None:
            endpoint = settings.endpoint.rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider, vibes_base_url=vibes_base_url, group_id=group_id)

    @property
    def resource(self) -> Resource:
        """What every span is said to come from (``service.name`` and the SDK's own)."""
        return self._provider.resource

    # ------------------------------------------------------------------ records

    def record_started(self, record: SourceRecord) -> RecordSpan:
        attributes: dict[str, str | int] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": record.topic,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "messaging.consumer.group.name": self._group_id,
        }
        if record.value is not None:
            attributes["messaging.message.body.size"] = len(record.value)
        span = self._tracer.start_span(
            f"process {record.topic}",
            context=_record_context(record.headers),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )
        return _RecordSpan(span)

    # ------------------------------------------------------------------ attempts

    def attempt_started(self, event: MappedEvent, attempt: int) -> _AttemptSpan:
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": self._base_url + events_path(event.company_key),
            "url.template": _EVENTS_ROUTE,
            **self._server,
            "vibes_bridge.rule": event.rule,
            "vibes_bridge.event_type": event.metric_event_type,
        }
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        parent = None if event.trace is None else _context_of(event.trace.traceparent)
        span = self._tracer.start_span(
            f"POST {_EVENTS_ROUTE}", context=parent, kind=SpanKind.CLIENT, attributes=attributes
        )
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        return _AttemptSpan(span, headers)

    # ------------------------------------------------------------------ callbacks

    def callback_received(
        self, callback: ProcessedCallback, labels: tuple[str, str, str, str]
    ) -> None:
        traceparent = (callback.debug_data or {}).get(_TRACEPARENT)
        if not isinstance(traceparent, str) or len(traceparent) > _TRACE_HEADER_LIMIT:
            return  # nothing to join: a root span per callback would be noise
        parent = _context_of(traceparent)
        if not trace.get_current_span(parent).get_span_context().is_valid:
            return
        event_type, action_type, status, reason = labels
        outcome = {
            "vibes.event_type": event_type,
            "vibes.action.type": action_type,
            "vibes.action.status": status,
            "vibes.action.status_reason": reason,
        }
        span = self._tracer.start_span(
            f"vibes callback {action_type}", context=parent, kind=SpanKind.CONSUMER
        )
        span.set_attributes(outcome)
        # Named by the reason when there is one: "sms_queued_to_carrier" reads as what happened.
        span.add_event(reason if reason != "none" else status, attributes=outcome)
        if status == "failed":
            span.set_status(StatusCode.ERROR, reason)
        span.end()

    def flush(self, timeout_seconds: float) -> None:
        self._provider.force_flush(int(timeout_seconds * 1000))

    def shutdown(self, timeout_seconds: float) -> None:
        self.flush(timeout_seconds)
        self._provider.shutdown()


class _RecordSpan(RecordSpan):
    __slots__ = ("_span", "ids")

    def __init__(self, span: Span) -> None:
        self._span = span
        context = span.get_span_context()
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        self.ids = TraceIds(trace.format_trace_id(context.trace_id), carrier[_TRACEPARENT])

    def finished(self, prepared: PreparedRecord | None) -> None:
        span = self._span
        if prepared is None:
            span.set_attribute("vibes_bridge.held", True)  # retried after a registry outage
        else:
            span.set_attribute("vibes_bridge.matched", prepared.matched)
            span.set_attribute("vibes_bridge.events", len(prepared.events))
            if prepared.events:
                rules = tuple(dict.fromkeys(event.rule for event in prepared.events))
                span.set_attribute("vibes_bridge.rules", rules)
            if prepared.dead_letters:
                letters = prepared.dead_letters
                reasons = tuple(dict.fromkeys(str(letter.reason) for letter in letters))
                span.set_attribute("vibes_bridge.dead_letter.reasons", reasons)
                span.set_status(StatusCode.ERROR, ", ".join(reasons))
        span.end()


class _AttemptSpan:
    """The deliverer's ``AttemptSpan``."""

    __slots__ = ("_span", "headers")

    def __init__(self, span: Span, headers: Mapping[str, str]) -> None:
        self._span = span
        self.headers = headers

    def finished(self, outcome: Outcome | None) -> None:
        span = self._span
        error = _error_type(outcome)
        if outcome is not None and outcome.status is not None:
            span.set_attribute("http.response.status_code", outcome.status)
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(StatusCode.ERROR)
        span.end()


def _error_type(outcome: Outcome | None) -> str | None:
    """HTTP semantic conventions: the status code as text from 400 on, else the failure's kind."""
    if outcome is None:
        return "cancelled"
    if outcome.status is not None:
        return str(outcome.status) if outcome.status >= 400 else None
    if isinstance(outcome, DeliveryUnavailable):
        return outcome.reason.value  # timeout, connection
    return "_OTHER"


def _record_context(headers: tuple[tuple[str, bytes | None], ...]) -> Context | None:
    """The parent a record's headers name (W3C trace context), or None for a new trace."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if value is not None and len(value) <= _TRACE_HEADER_LIMIT:
            lowered = name.lower()
            if lowered in _TRACE_HEADERS:
                carrier[lowered] = value.decode("ascii", "replace")
    return _PROPAGATOR.extract(carrier) if carrier else None


def _context_of(traceparent: str) -> Context:
    return _PROPAGATOR.extract({_TRACEPARENT: traceparent})


def _resource(settings: TracingSettings) -> Resource:
    """``service.name`` from the file, else OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES,
    else ``vibes-bridge`` (the SDK's own default would be ``unknown_service``)."""
    attributes = {} if settings.service_name is None else {SERVICE_NAME: settings.service_name}
    resource = Resource.create(attributes)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: _DEFAULT_SERVICE_NAME}))
    return resource
