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
from bridge.mapping.engine import Engine, MappingResult
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


# Values no JSON reader gives, but that other codecs, replays or future readers may:
# nesting up to the JSON reader's 1,024 levels and past it, integers beyond 64 bits,
# lone surrogates, non-finite floats. Whatever they hit, the engine answers with a
# MappingResult: never an exception, so one record never stops the others.

ODD_RULES = """\
rules:
  - name: odd
    topic: shop.orders
    when: "to_string(@) != '' && (a == b || a != b) && !contains(keys(@), 'skip')"
    event_type: {template: "t_{length(to_string(a))}"}
    event_id: {template: "{to_string(a)}-{b}"}
    recipient:
      external_person_id: {path: "to_string(a)"}
      mdn: {path: b, as: e164, region: US}
      person_key: {path: a, as: string}
    event_data:
      sorted: "sort(to_array(a))"
      text: {template: "{a} {b}"}
      upper: {path: a, as: upper}
      number: {path: b, as: number}
      integer: {path: b, as: integer}
      whole: "@"
      size: {path: "length(a)", default: 0}
      max: "max_by(to_array(a), &to_number(@))"
      joined: "join(',', to_array(a))"
      flat: "a[][][]"
  - name: plain
    topic: shop.orders
    event_type: plain
    recipient: {external_person_id: c}
"""


def _nested(depth: int, leaf: Any, as_map: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_map else [value]
    return value


ODD_LEAVES = st.one_of(
    SCALARS,
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(max_value=-(2**63) - 1, min_value=-(2**200)),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), "\ud800", "x\udfff", ""]),
)
ODD_VALUES = st.one_of(
    ODD_LEAVES,
    st.builds(_nested, st.integers(0, 1_200), ODD_LEAVES, st.booleans()),
    st.lists(ODD_LEAVES, max_size=4),
)


@pytest.fixture(scope="module")
def odd_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path = tmp_path_factory.mktemp("odd") / "bridge.yaml"
    path.write_text(HEADER + ODD_RULES, encoding="utf-8")
    return load_bridge(path, {}).engine


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=ODD_VALUES, b=ODD_VALUES)
def test_deep_and_odd_values_give_a_mapping_result_never_an_exception(
    odd_engine: Engine, a: Any, b: Any
) -> None:
    record = SourceRecord(topic="shop.orders", partition=0, offset=1, value=None)
    result = odd_engine.map({"a": a, "b": b}, record)
    assert isinstance(result, MappingResult)
    for event in result.events:
        orjson.loads(event.body)
    for failure in result.failures:
        assert isinstance(failure.error, MappingError)
        assert failure.error.message.startswith(f"rule {failure.rule}: ")


@pytest.mark.parametrize("depth", [900, 1_000, 1_023, 1_500])
@pytest.mark.parametrize("as_map", [False, True])
def test_a_deep_value_fails_only_its_own_record(
    odd_engine: Engine, depth: int, as_map: bool
) -> None:
    record = SourceRecord(topic="shop.orders", partition=0, offset=1, value=None)
    deep = odd_engine.map({"a": _nested(depth, 1, as_map), "b": "x", "c": "p1"}, record)
    [failure] = deep.failures
    assert failure.rule == "odd"
    assert failure.error.code in ("expression_error", "unencodable")
    assert [event.rule for event in deep.events] == ["plain"]  # the other rule still maps
    fine = odd_engine.map({"a": "x", "b": "+1 212 555 0123", "c": "p2"}, record)
    assert "plain" in [event.rule for event in fine.events]  # the next record maps
