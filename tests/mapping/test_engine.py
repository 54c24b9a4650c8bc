"""The engine: matching, fan-out, value forms and options, recipients, ids, debug_data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from bridge.errors import ConfigError
from bridge.loading import load_bridge
from bridge.mapping.engine import Engine, MappingResult, Priority
from bridge.mapping.event_id import coordinates_event_id
from bridge.records import KAFKA_KEY, SourceRecord
from tests.support.configs import HEADER, WriteConfig

SCHEMA_PATH = Path(__file__).parents[2] / "schemas" / "vibes_event.schema.json"


def _engine(write_config: WriteConfig, rules: str) -> Engine:
    return load_bridge(write_config(rules)).engine


def _record(topic: str = "shop.shipments", **overrides: Any) -> SourceRecord:
    fields: dict[str, Any] = {"topic": topic, "partition": 2, "offset": 41, "value": None}
    fields.update(overrides)
    return SourceRecord(**fields)


def _bodies(result: MappingResult) -> list[dict[str, Any]]:
    return [orjson.loads(event.body) for event in result.events]


SHIPPED_RULE = """\
rules:
  - name: order-shipped
    topic: shop.shipments
    when: "status == 'SHIPPED' && customer.sms_opt_in"
    event_type: order_shipped
    event_id: {template: "shp-{shipment_id}-{status}"}
    recipient:
      external_person_id: customer.id
      mdn: {path: customer.phone, as: e164, region: US}
    event_data:
      first_name: customer.first_name
      carrier: {value: UPS}
      tracking_url: {template: "https://track.example.com/{tracking_number}"}
      items: {path: "length(items)", default: 0}
    debug_data:
      source_system: {value: wms}
"""

SHIPMENT = {
    "shipment_id": "S1",
    "status": "SHIPPED",
    "tracking_number": "1Z999",
    "customer": {
        "id": "C-77",
        "first_name": "Bob",
        "phone": "(212) 555-0123",
        "sms_opt_in": True,
    },
    "items": [{"sku": "a"}, {"sku": "b"}],
}


def test_the_spec_example_maps_to_the_documented_body(write_config: WriteConfig) -> None:
    engine = _engine(write_config, SHIPPED_RULE)
    result = engine.map(json.loads(json.dumps(SHIPMENT)), _record())
    assert not result.failures
    assert _bodies(result) == [
        {
            "event_id": "shp-S1-SHIPPED",
            "event_type": "order_shipped",
            "event_data": {
                "first_name": "Bob",
                "carrier": "UPS",
                "tracking_url": "https://track.example.com/1Z999",
                "items": 2,
                "external_person_id": "C-77",
                "mdn": "+12125550123",
            },
            "debug_data": {"source_system": "wms"},
        }
    ]
    event = result.events[0]
    assert (event.rule, event.event_type, event.company_key) == (
        "order-shipped",
        "order_shipped",
        "acme",
    )


def test_a_false_predicate_matches_nothing(write_config: WriteConfig) -> None:
    engine = _engine(write_config, SHIPPED_RULE)
    result = engine.map({**SHIPMENT, "status": "DELIVERED"}, _record())
    assert not result.matched


def test_a_topic_without_rules_matches_nothing(write_config: WriteConfig) -> None:
    engine = _engine(write_config, SHIPPED_RULE)
    assert not engine.map(dict(SHIPMENT), _record("shop.orders")).matched


FAN_OUT = """\
rules:
  - name: first
    topic: [shop.orders, shop.shipments]
    event_type: one
    recipient: {external_person_id: id}
  - name: second
    topic: shop.orders
    event_type: two
    recipient: {person_key: id}
    company_key: other
"""


def test_every_matching_rule_emits_one_event_in_file_order(write_config: WriteConfig) -> None:
    engine = _engine(write_config, FAN_OUT)
    result = engine.map({"id": "p1"}, _record("shop.orders"))
    assert [(e.rule, e.event_type, e.company_key) for e in result.events] == [
        ("first", "one", "acme"),
        ("second", "two", "other"),
    ]
    only_first = engine.map({"id": "p1"}, _record("shop.shipments"))
    assert [e.rule for e in only_first.events] == ["first"]


def test_the_default_event_id_and_debug_data_come_from_the_coordinates(
    write_config: WriteConfig,
) -> None:
    engine = _engine(write_config, FAN_OUT)
    body = _bodies(engine.map({"id": "p1"}, _record("shop.orders")))[0]
    assert body["event_id"] == coordinates_event_id("first", "shop.orders", 2, 41)
    assert body["debug_data"] == {
        "rule": "first",
        "topic": "shop.orders",
        "partition": 2,
        "offset": 41,
    }


def test_debug_data_false_sends_none(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: quiet
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            debug_data: false
        """,
    )
    assert "debug_data" not in _bodies(engine.map({"id": "x"}, _record("shop.orders")))[0]


def test_a_long_event_id_is_hashed_and_a_null_one_falls_back(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: ids
            topic: shop.orders
            event_type: t
            event_id: {template: "{a}-{b}"}
            recipient: {external_person_id: id}
        """,
    )
    long_id = engine.map({"id": "x", "a": "a" * 30, "b": "b" * 30}, _record("shop.orders"))
    assert len(long_id.events[0].event_id) == 40
    assert long_id.events[0].event_id != "a" * 30 + "-" + "b" * 30
    fallback = engine.map({"id": "x", "a": "only"}, _record("shop.orders"))
    assert fallback.events[0].event_id == coordinates_event_id("ids", "shop.orders", 2, 41)


OPTIONS = """\
rules:
  - name: opts
    topic: shop.orders
    event_type: t
    recipient:
      external_person_id: {path: customer.id, as: string}
    event_data:
      count: {path: n, as: integer}
      price: {path: p, as: number}
      flag: {path: f, as: boolean}
      low: {path: s, as: lower}
      up: {path: s, as: upper}
      trimmed: {path: s, as: trim}
      fallback: {path: missing, default: none}
      must: {path: needed, required: true}
      constant: {value: {nested: [1, 2]}}
      absent: nothing.here
"""


def test_conversions_defaults_and_omission(write_config: WriteConfig) -> None:
    engine = _engine(write_config, OPTIONS)
    value = {"customer": {"id": 12}, "n": "7", "p": "2.5", "f": "yes", "s": "  MiXed ", "needed": 1}
    [body] = _bodies(engine.map(value, _record("shop.orders")))
    assert body["event_data"] == {
        "count": 7,
        "price": 2.5,
        "flag": True,
        "low": "  mixed ",
        "up": "  MIXED ",
        "trimmed": "MiXed",
        "fallback": "none",
        "must": 1,
        "constant": {"nested": [1, 2]},
        "external_person_id": "12",
    }


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"needed": None}, "required_value_missing"),
        ({"n": "seven"}, "conversion_failed"),
        ({"f": "maybe"}, "conversion_failed"),
        ({"customer": {}}, "no_recipient"),
    ],
)
def test_bad_values_are_mapping_errors_with_codes(
    write_config: WriteConfig, change: dict[str, Any], code: str
) -> None:
    engine = _engine(write_config, OPTIONS)
    value = {"customer": {"id": "c"}, "n": 1, "p": 1, "f": True, "s": "s", "needed": 1, **change}
    result = engine.map(value, _record("shop.orders"))
    assert not result.events
    [failure] = result.failures
    assert (failure.rule, failure.error.code, failure.error.reason) == (
        "opts",
        code,
        "mapping_error",
    )


E164 = """\
rules:
  - name: sms
    topic: shop.orders
    event_type: t
    recipient:
      mdn: {path: phone, as: e164, region: GB}
"""


@pytest.mark.parametrize(
    ("phone", "expected"),
    [("020 7946 0018", "+442079460018"), ("+1 212-555-0123", "+12125550123")],
)
def test_e164_normalises_with_the_region(
    write_config: WriteConfig, phone: str, expected: str
) -> None:
    engine = _engine(write_config, E164)
    [body] = _bodies(engine.map({"phone": phone}, _record("shop.orders")))
    assert body["event_data"]["mdn"] == expected


def test_an_invalid_phone_number_is_a_mapping_error_without_the_number(
    write_config: WriteConfig,
) -> None:
    engine = _engine(write_config, E164)
    [failure] = engine.map({"phone": "12345"}, _record("shop.orders")).failures
    assert failure.error.code == "invalid_phone_number"
    assert "12345" not in str(failure.error)


def test_kafka_metadata_is_readable(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: meta
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: _kafka.key}
            event_data:
              trace: _kafka.headers.traceparent
              where:
                template: "{_kafka.topic}/{_kafka.partition}/{_kafka.offset}@{_kafka.timestamp}"
        """,
    )
    record = _record(
        "shop.orders", key=b"k-1", timestamp_ms=1700, headers=(("traceparent", b"00-ab"),)
    )
    [body] = _bodies(engine.map({}, record))
    assert body["event_data"] == {
        "trace": "00-ab",
        "where": "shop.orders/2/41@1700",
        "external_person_id": "k-1",
    }


def test_a_computed_event_type_is_checked_per_record(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: computed
            topic: shop.orders
            event_type: {template: "order_{status}"}
            recipient: {external_person_id: id}
        """,
    )
    ok = engine.map({"id": "x", "status": "shipped"}, _record("shop.orders"))
    assert ok.events[0].event_type == "order_shipped"
    bad = engine.map({"id": "x", "status": "in transit"}, _record("shop.orders"))
    assert bad.failures[0].error.code == "invalid_event_type"


def test_runtime_expression_errors_do_not_escape_and_do_not_quote_values(
    write_config: WriteConfig,
) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: typed
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              n: "length(secret)"
        """,
    )
    [failure] = engine.map({"id": "x", "secret": 123456789}, _record("shop.orders")).failures
    assert failure.error.code == "expression_error"
    assert "123456789" not in str(failure.error)


def test_one_failing_rule_does_not_stop_the_others(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: needs-phone
            topic: shop.orders
            event_type: a
            recipient: {mdn: {path: phone, as: e164, region: US}}
          - name: by-id
            topic: shop.orders
            event_type: b
            recipient: {external_person_id: id}
        """,
    )
    result = engine.map({"id": "x", "phone": "nope"}, _record("shop.orders"))
    assert [e.rule for e in result.events] == ["by-id"]
    assert [f.rule for f in result.failures] == ["needs-phone"]


def test_the_output_validates_against_the_vibes_json_schema(write_config: WriteConfig) -> None:
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    engine = _engine(write_config, SHIPPED_RULE)
    for body in _bodies(engine.map(json.loads(json.dumps(SHIPMENT)), _record())):
        validator.validate(body)


def test_constants_are_converted_once_and_checked_at_load(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: const
            topic: shop.orders
            event_type: t
            recipient:
              mdn: {value: "(415) 555-0142", as: e164, region: US}
            event_data:
              fallback: {value: null, default: 3, as: string}
        """,
    )
    [body] = _bodies(engine.map({}, _record("shop.orders")))
    assert body["event_data"] == {"fallback": "3", "mdn": "+14155550142"}


# ------------------------------------------------------- every failure names rule and field


MESSAGES = """\
rules:
  - name: order-shipped
    topic: shop.orders
    when: "length(tags) > `0`"
    event_type: {template: "order_{status}"}
    event_id: {path: "abs(id_number)"}
    recipient:
      external_person_id: customer.id
      mdn: {path: customer.phone, as: e164, region: US}
    event_data:
      count: {path: count, as: integer}
      must: {path: needed, required: true}
      size: "length(size_of)"
      big: {path: big, as: number}
"""

GOOD_ORDER: dict[str, Any] = {
    "tags": ["a"],
    "status": "shipped",
    "id_number": -4,
    "customer": {"id": "Person-Secret-Id", "phone": "(212) 555-0123"},
    "count": "3",
    "needed": "yes",
    "size_of": "abc",
}


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        (
            {"customer": {"id": "Person-Secret-Id", "phone": "Secret"}},
            "invalid_phone_number",
            "rule order-shipped: recipient.mdn: not a phone number (region US)",
        ),
        (
            {"customer": {"id": "Person-Secret-Id", "phone": "+1 999 999 9999"}},
            "invalid_phone_number",
            "rule order-shipped: recipient.mdn: not a valid phone number (region US)",
        ),
        (
            {"customer": {"id": ""}},
            "invalid_recipient",
            "rule order-shipped: recipient.external_person_id: an empty string",
        ),
        (
            {"customer": {}},
            "no_recipient",
            "rule order-shipped: recipient: none of external_person_id, mdn resolved to a value",
        ),
        ({"count": "Secret"}, "conversion_failed", "rule order-shipped: event_data.count: "),
        (
            {"needed": None},
            "required_value_missing",
            "rule order-shipped: event_data.must: required",
        ),
        (
            {"size_of": 12345},
            "expression_error",
            "rule order-shipped: event_data.size: a JMESPath function got an argument "
            "of the wrong type (length)",
        ),
        ({"id_number": "Secret"}, "expression_error", "rule order-shipped: event_id: "),
        ({"tags": 12345}, "expression_error", "rule order-shipped: when: "),
        ({"status": "Secret status"}, "invalid_event_type", "rule order-shipped: event_type: "),
        ({"big": "1e400"}, "conversion_failed", "rule order-shipped: event_data.big: "),
    ],
)
def test_every_mapping_error_names_the_rule_and_the_field_but_no_value(
    write_config: WriteConfig, change: dict[str, Any], code: str, message: str
) -> None:
    engine = _engine(write_config, MESSAGES)
    assert engine.map(dict(GOOD_ORDER), _record("shop.orders")).events  # the base case maps
    [failure] = engine.map({**GOOD_ORDER, **change}, _record("shop.orders")).failures
    assert failure.error.code == code
    assert failure.error.message.startswith(message), failure.error.message
    assert "Secret" not in str(failure.error)
    assert "12345" not in str(failure.error)


def test_an_unencodable_value_names_its_field(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: raw
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              ok: id
              nested: deep
        """,
    )
    deep: Any = 1
    for _ in range(300):  # orjson writes at most 254 levels
        deep = [deep]
    [failure] = engine.map({"id": "x", "deep": deep}, _record("shop.orders")).failures
    assert failure.error.code == "unencodable"
    assert failure.error.message.startswith("rule raw: event_data.nested: JSON cannot carry")


# ------------------------------------------------------- default on a function's missing input


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ('{path: "length(items)", default: 0}', {}, 0),
        ('{path: "length(items)", default: 0}', {"items": None}, 0),
        ('{path: "length(items)", default: 0}', {"items": [1, 2]}, 2),
        ('{path: "length(order.items)", default: 0}', {"order": "not a map"}, 0),
        ("{path: \"join(', ', tags)\", default: none}", {}, "none"),
        ('{template: "n={length(items)}", default: "n=0"}', {}, "n=0"),
        ('{path: "length(items)", default: "0", as: integer}', {}, 0),
    ],
)
def test_a_default_applies_when_a_function_gets_a_missing_value(
    write_config: WriteConfig, spec: str, value: dict[str, Any], expected: Any
) -> None:
    engine = _engine(
        write_config,
        f"""\
        rules:
          - name: counts
            topic: shop.orders
            event_type: t
            recipient: {{external_person_id: id}}
            event_data:
              n: {spec}
        """,
    )
    [body] = _bodies(engine.map({"id": "x", **value}, _record("shop.orders")))
    assert body["event_data"]["n"] == expected


def test_a_function_on_a_missing_value_without_default_leaves_the_field_out(
    write_config: WriteConfig,
) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: counts
            topic: shop.orders
            when: "length(items) > `0` || id == 'always'"
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              n: "length(items)"
              must: {path: "length(items)", required: true}
        """,
    )
    [failure] = engine.map({"id": "always"}, _record("shop.orders")).failures
    assert failure.error.code == "required_value_missing"
    assert not engine.map({"id": "x"}, _record("shop.orders")).matched  # when: null is false


# ------------------------------------------------------------- constants JSON cannot carry


@pytest.mark.parametrize(
    "spec",
    [
        "{value: 123456789012345678901234567890}",
        "{value: -9223372036854775809}",
        "{value: {a: [1, 123456789012345678901234567890]}}",
        "{path: n, default: 123456789012345678901234567890}",
        "{value: null, default: 123456789012345678901234567890}",
    ],
)
def test_a_constant_json_cannot_carry_is_refused_at_load_with_its_line(
    write_config: WriteConfig, spec: str
) -> None:
    path = write_config(
        f"""\
        rules:
          - name: big
            topic: shop.orders
            event_type: t
            recipient: {{external_person_id: id}}
            event_data:
              n: {spec}
        """
    )
    with pytest.raises(ConfigError) as caught:
        load_bridge(path)
    [problem] = caught.value.problems
    assert problem.line == HEADER.count("\n") + 7
    assert "event_data.n: the " in problem.message
    assert "cannot be sent as JSON" in problem.message


def test_the_largest_64_bit_constants_are_accepted(write_config: WriteConfig) -> None:
    engine = _engine(
        write_config,
        """\
        rules:
          - name: edge
            topic: shop.orders
            event_type: t
            recipient: {external_person_id: id}
            event_data:
              high: {value: 9223372036854775807}
              low: {value: -9223372036854775808}
        """,
    )
    [body] = _bodies(engine.map({"id": "x"}, _record("shop.orders")))
    assert body["event_data"]["high"] == 2**63 - 1
    assert body["event_data"]["low"] == -(2**63)


# ------------------------------------------------------------------ _kafka only when read


@pytest.mark.parametrize(
    ("expression", "added"),
    [
        ("_kafka.key", True),
        ("to_string(@)", True),
        ("items[*].sku", False),
        ("items[?@ != `null`] | [0]", False),
        ("'_kafka'", False),
    ],
)
def test_the_kafka_document_is_added_only_for_rules_that_can_read_it(
    write_config: WriteConfig, expression: str, added: bool
) -> None:
    engine = _engine(
        write_config,
        f"""\
        rules:
          - name: meta
            topic: shop.orders
            event_type: t
            recipient: {{external_person_id: id}}
            event_data:
              x: "{expression}"
        """,
    )
    value: dict[str, Any] = {"id": "x", "items": [{"sku": "a"}]}
    assert engine.map(value, _record("shop.orders", key=b"k")).events
    assert (KAFKA_KEY in value) is added


def _big_rule(max_body_bytes: int | None = None, constant: int = 0) -> str:
    vibes = "" if max_body_bytes is None else f"  max_body_bytes: {max_body_bytes}\n"
    header = HEADER.replace("  company_key: acme\n", f"  company_key: acme\n{vibes}")
    padding = f"      banner: {{value: {'x' * constant}}}\n" if constant else ""
    return header + (
        "rules:\n"
        "  - name: big\n"
        "    topic: shop.orders\n"
        "    event_type: t\n"
        "    recipient: {external_person_id: customer.id}\n"
        "    event_data:\n"
        "      note: note\n"
        f"{padding}"
    )


def _map_note(write_config: WriteConfig, rules: str, note_bytes: int) -> MappingResult:
    engine = load_bridge(write_config("", header=rules), {}).engine
    return engine.map({"customer": {"id": "c-1"}, "note": "n" * note_bytes}, _record("shop.orders"))


def test_a_body_over_the_limit_is_a_mapping_error_before_any_post(
    write_config: WriteConfig,
) -> None:
    fits = _map_note(write_config, _big_rule(), 15_000)
    assert len(fits.events) == 1
    assert len(fits.events[0].body) <= 16_384
    too_large = _map_note(write_config, _big_rule(), 17_000)
    assert too_large.events == ()
    [failure] = too_large.failures
    assert (failure.error.code, failure.error.reason) == ("body_too_large", "mapping_error")
    assert "vibes.max_body_bytes is 16384" in failure.error.message
    assert "nnnn" not in failure.error.message  # the size, never the content


def test_the_body_limit_is_a_setting(write_config: WriteConfig) -> None:
    result = _map_note(write_config, _big_rule(max_body_bytes=1024), 2000)
    assert [failure.error.code for failure in result.failures] == ["body_too_large"]


def test_loading_warns_when_a_rules_constant_parts_come_close_to_the_limit(
    write_config: WriteConfig,
) -> None:
    with load_bridge(write_config("", header=_big_rule(constant=13_000)), {}) as loaded:
        warnings = [str(warning) for warning in loaded.warnings]
    assert len(warnings) == 1, warnings
    assert "rule big: its constant parts alone make a" in warnings[0]
    assert "of vibes.max_body_bytes (16384)" in warnings[0]
    with load_bridge(write_config("", header=_big_rule(constant=8_000)), {}) as loaded:
        assert loaded.warnings == ()


def test_a_rules_priority_goes_with_its_events(write_config: WriteConfig) -> None:
    rules = """\
rules:
  - {name: urgent, topic: shop.orders, priority: high, event_type: t,
     recipient: {external_person_id: customer.id}}
  - {name: plain, topic: shop.orders, event_type: t, recipient: {external_person_id: customer.id}}
"""
    result = _engine(write_config, rules).map({"customer": {"id": "c"}}, _record("shop.orders"))
    assert [(event.rule, event.priority) for event in result.events] == [
        ("urgent", Priority.HIGH),
        ("plain", Priority.NORMAL),
    ]
    with pytest.raises(ConfigError) as caught:
        load_bridge(write_config(rules.replace("priority: high", "priority: urgent")), {})
    assert "'high', 'normal' or 'low'" in str(caught.value)
