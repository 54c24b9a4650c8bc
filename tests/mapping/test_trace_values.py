"""``{trace: trace_id | traceparent}`` in ``debug_data``: the record's trace, or nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bridge.errors import ConfigError
from bridge.loading import load_bridge
from bridge.mapping.engine import Engine
from bridge.records import SourceRecord, TraceIds
from bridge.service.stages import prepare
from tests.support.configs import WriteConfig

TRACE = TraceIds(
    "4bf92f3577b34da6a3ce929d0e0e4736", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
)
RULES = """\
rules:
  - name: traced
    topic: shop.orders
    event_type: t
    recipient: {external_person_id: id}
    debug_data:
      rule: {value: traced}
      trace_id: {trace: trace_id}
      parent: {trace: traceparent}
"""
RECORD = SourceRecord("shop.orders", 0, 7, b'{"id": "p-1"}')


def _engine(write_config: WriteConfig, rules: str = RULES) -> Engine:
    return load_bridge(write_config(rules)).engine


def _debug(engine: Engine, trace: TraceIds | None) -> Any:
    result = engine.map({"id": "p-1"}, RECORD, trace)
    [event] = result.events
    assert event.trace == trace  # the event carries it to delivery
    return orjson.loads(event.body)["debug_data"]


def test_the_trace_fills_the_fields(write_config: WriteConfig) -> None:
    debug = _debug(_engine(write_config), TRACE)
    assert debug == {"rule": "traced", "trace_id": TRACE.trace_id, "parent": TRACE.traceparent}


def test_without_a_trace_the_fields_are_left_out(write_config: WriteConfig) -> None:
    assert _debug(_engine(write_config), None) == {"rule": "traced"}


def test_prepare_passes_the_trace_to_the_events(write_config: WriteConfig) -> None:
    loaded = load_bridge(write_config(RULES))
    prepared = prepare(
        RECORD, loaded.decoders, loaded.engine, max_event_age_seconds=None, now_ms=0, trace=TRACE
    )
    [event] = prepared.events
    assert event.trace == TRACE
    assert orjson.loads(event.body)["debug_data"]["trace_id"] == TRACE.trace_id


def test_the_default_debug_data_is_unchanged_by_tracing(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: plain
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
        """,
    )
    assert _debug(engine, TRACE) == {
        "rule": "plain",
        "topic": "shop.orders",
        "partition": 0,
        "offset": 7,
    }


@pytest.mark.parametrize(
    ("where", "spec", "message"),
    [
        ("event_data", "{trace: trace_id}", "event_data.x: trace is for debug_data only"),
        ("debug_data", "{trace: span_id}", "trace must be one of trace_id, traceparent"),
        ("debug_data", "{trace: trace_id, default: x}", "trace takes no other key"),
    ],
)
def test_mistakes_are_load_errors(
    write_config: WriteConfig, where: str, spec: str, message: str
) -> None:
    path = write_config(
        f"""\
        rules:
          - name: wrong
            topic: shop.orders
            event_type: t
            recipient: {{external_person_id: id}}
            {where}:
              x: {spec}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_bridge(path)
    [problem] = caught.value.problems
    assert message in problem.message
