"""Traces end to end: a real broker, the simulator, ``vibes-bridge run``, a real OTLP receiver.

A record with a W3C ``traceparent`` header gets a span whose parent is that
header's span; each POST to the simulator is a client span under it and carries
the matching ``traceparent``; ``{trace: ...}`` puts the trace into ``debug_data``,
the simulator echoes it in its callbacks, and the receiver records a span in the
same trace with the outcome as its event. A record without the header starts a
trace of its own. No span says anything of the record's values.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer

from tests.callbacks.support import SimCallbacks, callbacks_cli, receiver_url, with_callbacks
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.service import ServiceFactory
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
PERSON = "c-person-5551234567"  # a customer id: must appear in no span
ORDER = "o-secret-order-77"

RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    recipient:
      external_person_id: customer_id
    event_data:
      order_id: order_id
    debug_data:
      rule: {{value: order-update}}
      trace_id: {{trace: trace_id}}
      traceparent: {{trace: traceparent}}
"""
# OpenTelemetry's span kinds as OTLP numbers them.
KIND_CLIENT, KIND_CONSUMER = 3, 5


def _produce(bootstrap: str, topic: str, records: list[tuple[dict[str, Any], list[Any]]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value, headers in records:
        producer.produce(topic, value=orjson.dumps(value), key=b"k", headers=headers)
    assert producer.flush(30) == 0


def test_a_record_traceparent_parents_its_spans_and_reaches_vibes_and_the_callback(
    service: ServiceFactory,
) -> None:
    setup = service(partitions=1)
    callbacks_topic = setup.new_topic(1)
    otlp = OtlpReceiver()
    sim = SimCallbacks(setup.sim.url)
    try:
        sim.configure(retry_s=0.2)
        config = setup.config(rules=RULES.format(topic=setup.topic))
        config.write_text(
            config.read_text()
            + f"tracing:\n  enabled: true\n  endpoint: {otlp.endpoint}\n  service_name: e2e\n"
        )
        config = with_callbacks(config, callbacks_topic)
        bridge = setup.start(config, env={"OTEL_BSP_SCHEDULE_DELAY": "100"})
        registered = callbacks_cli("register", "-c", str(config), "--url", receiver_url(bridge))
        assert registered.returncode == 0, registered.stderr
        _produce(
            setup.bootstrap,
            setup.topic,
            [
                ({"order_id": ORDER, "customer_id": PERSON}, [("traceparent", TRACEPARENT)]),
                ({"order_id": "o-2", "customer_id": "c-2"}, []),
            ],
        )

        def traced() -> bool:
            spans = otlp.spans()
            queued = [
                span
                for span in spans
                if span.name == "vibes callback processing" and span.trace_id == TRACE_ID
            ]
            records, attempts = _named(spans, "process "), _named(spans, "POST ")
            return len(records) == 2 and len(attempts) == 2 and bool(queued)

        wait_until(traced, 90, "record, attempt and callback spans")
        spans = otlp.spans()
        assert {span.service_name for span in spans} == {"e2e"}

        # The record's span: a child of the record's traceparent.
        (record_span,) = [s for s in _named(spans, "process ") if s.trace_id == TRACE_ID]
        assert record_span.parent_span_id == PARENT_SPAN
        assert record_span.kind == KIND_CONSUMER
        assert record_span.attributes["messaging.destination.name"] == setup.topic
        assert record_span.attributes["messaging.kafka.offset"] == 0
        assert record_span.attributes["vibes_bridge.rules"] == ["order-update"]

        # The attempt: a client span under it, and the simulator saw its traceparent.
        (attempt,) = [s for s in _named(spans, "POST ") if s.trace_id == TRACE_ID]
        assert attempt.kind == KIND_CLIENT
        assert attempt.parent_span_id == record_span.span_id
        assert attempt.attributes["http.request.method"] == "POST"
        assert attempt.attributes["http.response.status_code"] == 200
        assert attempt.attributes["url.full"] == f"{setup.sim.url}/companies/demo/events"
        events = httpx.get(f"{setup.sim.url}/_sim/events", timeout=10).json()
        (seen,) = [e for e in events if e["body"]["event_data"]["order_id"] == ORDER]
        assert seen["traceparent"] == f"00-{TRACE_ID}-{attempt.span_id}-01"
        # debug_data carried the record's trace to Vibes...
        assert seen["body"]["debug_data"]["trace_id"] == TRACE_ID
        assert seen["body"]["debug_data"]["traceparent"] == (
            f"00-{TRACE_ID}-{record_span.span_id}-01"
        )
        # ... and back: the callbacks are spans in the same trace, under the record's span.
        called_back = [s for s in spans if s.name.startswith("vibes callback")]
        ours = [s for s in called_back if s.trace_id == TRACE_ID]
        assert {s.parent_span_id for s in ours} == {record_span.span_id}
        (queued,) = [s for s in ours if s.attributes["vibes.action.type"] == "processing"]
        assert [name for name, _ in queued.events] == ["sms_queued_to_carrier"]
        assert queued.attributes["vibes.action.status_reason"] == "sms_queued_to_carrier"

        # The record without a traceparent starts its own trace, and the rest follows it.
        (other,) = [s for s in _named(spans, "process ") if s.trace_id != TRACE_ID]
        assert other.parent_span_id == ""
        (other_attempt,) = [s for s in _named(spans, "POST ") if s.trace_id == other.trace_id]
        assert other_attempt.parent_span_id == other.span_id

        # No person data anywhere in what was exported.
        for span in spans:
            for value in span.all_values():
                assert PERSON not in value
                assert ORDER not in value
    finally:
        sim.close()
        otlp.close()


def _named(spans: list[ReceivedSpan], prefix: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.name.startswith(prefix)]
