"""Traces: the interface the pipeline calls, and the object that does nothing when tracing is off.

The data path calls three things, each at one place: :meth:`Tracing.record_started`
on the consumer thread before a record is prepared (its span covers consume,
decode and map), :meth:`Tracing.attempt_started` in the deliverer around each POST
(a client span, ``traceparent`` sent to Vibes), and :meth:`Tracing.callback_received`
in the callback receiver (a span in the record's trace, the outcome as its event).

Off (the default) they are :data:`NO_TRACING`'s methods: a constant returned, no
allocation, and OpenTelemetry never imported. On, :func:`start_tracing` imports
``bridge.tracing.otel``, the only module that imports OpenTelemetry
(docs/tracing.md; the architecture page's dependency rules).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from bridge.config.model import TracingSettings
from bridge.records import SourceRecord, TraceIds

if TYPE_CHECKING:
    from bridge.delivery.deliverer import AttemptSpan
    from bridge.mapping.engine import MappedEvent
    from bridge.service.stages import PreparedRecord
    from bridge.vibes.callbacks import ProcessedCallback

__all__ = ["NO_TRACING", "RecordSpan", "Tracing", "start_tracing"]


class RecordSpan:
    """One record's span, from before it is decoded to when its work is known.

    This base is the span of tracing off: no ids, nothing recorded.
    """

    ids: TraceIds | None = None
    """The record's trace, for ``debug_data`` and the delivery attempts; None when off."""

    def finished(self, prepared: PreparedRecord | None) -> None:
        """What came of the record; None when it was held back (a registry outage)."""


NO_RECORD_SPAN: Final = RecordSpan()


class Tracing:
    """What the pipeline calls; this base, as :data:`NO_TRACING`, records nothing."""

    enabled: bool = False

    def record_started(self, record: SourceRecord) -> RecordSpan:
        """A span for ``record``, its parent the record's W3C ``traceparent`` header if any."""
        return NO_RECORD_SPAN

    def attempt_started(self, event: MappedEvent, attempt: int) -> AttemptSpan | None:
        """A client span for one POST of ``event`` (the deliverer's ``AttemptTracer``)."""
        return None

    def callback_received(
        self, callback: ProcessedCallback, labels: tuple[str, str, str, str]
    ) -> None:
        """A stored callback: a span in the trace its ``debug_data.traceparent`` names.

        ``labels`` are the callback's bounded ``(event_type, action_type, status,
        status_reason)``: the only values of it a span may carry.
        """

    def flush(self, timeout_seconds: float) -> None:
        """Export what is buffered, within ``timeout_seconds`` (blocking; benchmarks, tests)."""

    def shutdown(self, timeout_seconds: float) -> None:
        """Export what is still buffered, within ``timeout_seconds``, and stop (blocking)."""


NO_TRACING: Final = Tracing()

_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"


def start_tracing(
    settings: TracingSettings,
    *,
    vibes_base_url: str,
    group_id: str,
    environ: Mapping[str, str] = os.environ,
) -> Tracing:
    """The run's tracing: :data:`NO_TRACING` unless ``tracing.enabled`` is set and the
    standard ``OTEL_SDK_DISABLED`` is not ``true``; then the OpenTelemetry SDK is loaded."""
    if not settings.enabled or environ.get(_SDK_DISABLED, "").strip().lower() == "true":
        return NO_TRACING
    from bridge.tracing.otel import OtelTracing

    return OtelTracing.start(settings, vibes_base_url=vibes_base_url, group_id=group_id)
