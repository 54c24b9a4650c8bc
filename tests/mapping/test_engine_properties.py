"""Whatever a record holds, the engine gives valid Vibes bodies or mapping errors, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from bridge.errors import MappingError
from bridge.loading import load_bridge
from bridge.mapping.engine import Engine
from bridge.records import SourceRecord
from tests.support.configs import HEADER

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "schemas" / "vibes_event.schema.json").read_text(encoding="utf-8")
)

RULES = """\
rules:
  - name: everything
    topic: shop.orders
    when: "status != 'IGNORED'"
    event_type: {template: "order_{status}"}
    event_id: {template: "{id}-{status}"}
    recipient:
      external_person_id: customer.id
      mdn: {path: customer.phone, as: e164, region: US}
      person_key: {path: customer.key, as: string}
    event_data:
      name: {path: customer.name, as: trim}
      count: {path: "length(items)", default: 0}
      first: "items[0]"
      total: {path: total, as: number}
      flag: {path: flag, as: boolean}
      note: {template: "Hello {customer.name}, {{order}} {id}"}
      everything: "@"
    debug_data:
      source: {value: test}
      key: _kafka.key
  - name: simple
    topic: shop.orders
    event_type: simple
    recipient: {vibes_device_id: device}
"""

KEYS = st.sampled_from(["id", "status", "customer", "items", "total", "flag", "device", "name"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["SHIPPED", "IGNORED", "+1 212 555 0123", "  Bob  ", "true", "12.5"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=15,
)
RECORDS = st.dictionaries(KEYS, VALUES, max_size=8)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("props") / "bridge.yaml"
    path.write_text(HEADER + RULES, encoding="utf-8")
    return load_bridge(path, {}).engine


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=RECORDS, key=st.one_of(st.none(), st.binary(max_size=8)))
def test_output_is_a_valid_body_or_a_mapping_error(
    engine: Engine, value: dict[str, Any], key: bytes | None
) -> None:
    record = SourceRecord(topic="shop.orders", partition=0, offset=1, value=None, key=key)
    result = engine.map(value, record)
    validator = Draft202012Validator(SCHEMA)
    for event in result.events:
        body = orjson.loads(event.body)
        validator.validate(body)
        assert body["event_type"] == event.event_type
        assert body["event_id"] == event.event_id
    for failure in result.failures:
        assert isinstance(failure.error, MappingError)
        assert failure.error.code
