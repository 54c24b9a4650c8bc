"""Load-time checks for the Protobuf and JSON Schema formats: the source's settings,
and every rule's field paths and conversions against the ``.proto`` message or the
JSON Schema, reported as FILE:LINE problems (as for Avro)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.codecs import (
    ConfluentJsonDecoder,
    ConfluentProtobufDecoder,
    ProtobufDecoder,
    json_schema_shape,
    load_message_descriptor,
    protobuf_shape,
)
from bridge.errors import ConfigError
from bridge.loading import load_bridge
from bridge.mapping.avro_paths import unknown_field_paths
from bridge.mapping.jmes import compile_expression
from tests.support.configs import WriteConfig
from tests.support.protobuf import CUSTOMER_SCHEMA, ORDER_DESC

HEADER = """\
version: 1
vibes:
  company_key: acme
  username: user
  password: secret
sources:
  - topic: pb.orders
    format: protobuf
    schema: {desc}
    message: shop.OrderEvent
  - topic: cpb.orders
    format: confluent-protobuf
    schema_registry: http://127.0.0.1:1
    schema: {desc}
    message: shop.OrderEvent
  - topic: cj.orders
    format: confluent-json
    schema_registry: http://127.0.0.1:1
    schema: {json_schema}
    validate: true
"""
VALID_RULES = """\
rules:
  - name: ok
    topic: [pb.orders, cpb.orders]
    when: "status == 'CONFIRMED' && customer.sms_opt_in"
    event_type: order_confirmed
    recipient:
      external_person_id: customer.id
      mdn: {path: customer.phone, as: e164, region: US}
    event_data:
      skus: "items[*].sku"
      total: {path: total_micros, as: integer}
      placed_at: placed_at
      coupon: coupon
      channel: attributes.channel
      city: customer.address.city
      big: {path: "items[0].unit_price_micros", as: number}
      trace: _kafka.headers.traceparent
  - name: ok-json
    topic: cj.orders
    event_type: order_confirmed
    recipient:
      external_person_id: customer.id
    event_data:
      city: customer.address.city
      skus: "items[*].sku"
      quantity: {path: "items[0].quantity", as: integer}
      total: {path: total, as: boolean}
"""


def _header(tmp_path: Path) -> str:
    schema = tmp_path / "order.schema.json"
    # A local copy whose reference is inlined: the file is read on its own.
    local = json.loads(json.dumps(CUSTOMER_SCHEMA))
    local["properties"]["customer"]["properties"]["address"] = {"$ref": "#/definitions/Address"}
    local["definitions"]["Address"] = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "postal_code": {"type": "string"}},
    }
    schema.write_text(json.dumps(local))
    return HEADER.format(desc=ORDER_DESC, json_schema=schema)


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, {})
    return [str(problem).split(":", 1)[1] for problem in caught.value.problems]


def test_valid_paths_load_and_build_each_formats_decoder(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    with load_bridge(write_config(VALID_RULES, header=_header(tmp_path)), {}) as loaded:
        assert isinstance(loaded.decoders["pb.orders"], ProtobufDecoder)
        assert isinstance(loaded.decoders["cpb.orders"], ConfluentProtobufDecoder)
        json_decoder = loaded.decoders["cj.orders"]
        assert isinstance(json_decoder, ConfluentJsonDecoder)
        assert json_decoder.validate


PROTOBUF_MISTAKES = """\
rules:
  - name: bad
    topic: pb.orders
    when: "customer.sms_optin"
    event_type: order_confirmed
    recipient:
      external_person_id: customer.ident
      mdn: {path: customer.address, as: e164}
    event_data:
      sku: items.sku
      total: {path: customer, as: integer}
      ok: {path: status, as: string}
      flag: {path: weight_kg, as: boolean}
      kind: {path: status, as: number}
"""


def test_protobuf_paths_are_checked_against_the_message(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    header = _header(tmp_path)
    problems = _problems(write_config(PROTOBUF_MISTAKES, header=header))
    offset = header.count("\n")
    expected = [
        (offset + 4, "field 'customer.sms_optin' is not in the Protobuf message"),
        (offset + 7, "field 'customer.ident' is not in the Protobuf message"),
        (offset + 8, "'customer.address' is a record in the Protobuf message: as: e164"),
        (offset + 10, "use items[*].sku for each element"),
        (offset + 11, "'customer' is a record in the Protobuf message: as: integer"),
        (offset + 13, "'weight_kg' is a double in the Protobuf message: as: boolean"),
        (offset + 14, "'status' is an enum in the Protobuf message: as: number"),
    ]
    for line, text in expected:
        assert any(p.startswith(f"{line}: ") and text in p for p in problems), (line, problems)
    assert len(problems) == len(expected), problems
    assert all("(topic pb.orders)" in p for p in problems)


JSON_MISTAKES = """\
rules:
  - name: bad
    topic: cj.orders
    event_type: order_confirmed
    recipient:
      external_person_id: customer.idd
    event_data:
      city: customer.address.town
      sku: items.sku
      quantity: {path: "items[0].sku", as: integer}
      customer: {path: customer, as: number}
      fine: {path: total, as: integer}
"""


def test_json_schema_paths_are_checked_against_the_schema(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    header = _header(tmp_path)
    problems = _problems(write_config(JSON_MISTAKES, header=header))
    offset = header.count("\n")
    expected = [
        (offset + 6, "field 'customer.idd' is not in the JSON Schema (record 'customer' has"),
        (offset + 8, "field 'customer.address.town' is not in the JSON Schema (record 'Address'"),
        (offset + 9, "use items[*].sku for each element"),
        (offset + 11, "'customer' is a record in the JSON Schema: as: number"),
    ]
    for line, text in expected:
        assert any(p.startswith(f"{line}: ") and text in p for p in problems), (line, problems)
    # items[0].sku is a string: as: integer may take it ("12"); total is a number.
    assert len(problems) == len(expected), problems


def test_an_avro_path_a_conversion_never_takes_is_refused_too(write_config: WriteConfig) -> None:
    from tests.support.paths import SCHEMAS

    header = (
        "version: 1\nvibes: {company_key: acme, username: u, password: p}\n"
        f"sources:\n  - topic: shop.shipments\n    format: avro\n"
        f"    schema: {SCHEMAS / 'shipment_event.avsc'}\n"
    )
    rules = """\
rules:
  - name: r
    topic: shop.shipments
    event_type: t
    recipient: {external_person_id: customer.id}
    event_data:
      n: {path: items, as: integer}
      m: {path: customer, as: e164}
      fine: {path: customer.id, as: integer}
"""
    problems = _problems(write_config(rules, header=header))
    assert len(problems) == 2, problems
    assert "'items' is an array in the Avro schema: as: integer never takes one" in problems[0]
    assert "'customer' is a record in the Avro schema: as: e164" in problems[1]


ONE_RULE = "rules:\n  - {name: r, topic: t, event_type: e, recipient: {external_person_id: id}}\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("format: protobuf\n    schema: x.desc", "needs schema: (a descriptor set"),
        ("format: protobuf\n    message: a.B", "needs schema: (a descriptor set"),
        ("format: confluent-protobuf", "needs schema_registry"),
        ("format: confluent-json", "needs schema_registry"),
        (
            "format: confluent-protobuf\n    schema_registry: http://r\n    message: a.B",
            "takes schema: and message: together",
        ),
        ("format: json\n    validate: true", "validate: applies only to format: confluent-json"),
        (
            "format: confluent-avro\n    schema_registry: http://r\n    message: a.B",
            "message: applies only to protobuf formats",
        ),
    ],
)
def test_a_source_missing_what_its_format_needs_is_refused(
    write_config: WriteConfig, source: str, expected: str
) -> None:
    header = (
        "version: 1\nvibes: {company_key: acme, username: u, password: p}\n"
        f"sources:\n  - topic: t\n    {source}\n"
    )
    problems = _problems(write_config(ONE_RULE, header=header))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("schema_key", "content", "expected"),
    [
        ("desc", None, "does not exist"),
        ("desc", b"garbage\xff", "is not a descriptor set"),
        ("json", b"{not json", "is not JSON"),
        ("json", b'{"type": 12}', "is not a valid schema"),
    ],
)
def test_unusable_schema_files_are_problems_at_their_line(
    tmp_path: Path, write_config: WriteConfig, schema_key: str, content: bytes | None, expected: str
) -> None:
    path = tmp_path / f"schema.{schema_key}"
    if content is not None:
        path.write_bytes(content)
    if schema_key == "desc":
        source = f"format: protobuf\n    schema: {path}\n    message: shop.OrderEvent"
    else:
        source = f"format: confluent-json\n    schema_registry: http://r\n    schema: {path}"
    header = (
        "version: 1\nvibes: {company_key: acme, username: u, password: p}\n"
        f"sources:\n  - topic: t\n    {source}\n"
    )
    problems = _problems(write_config(ONE_RULE, header=header))
    line = 6 if schema_key == "desc" else 7  # the schema: key's
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{line}: "), problems
    assert expected in problems[0], problems


SHAPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object", "patternProperties": {"^x-": {"type": "integer"}}},
        "mixed": {
            "type": "object",
            "properties": {"known": {"type": "object", "properties": {"f": {"type": "string"}}}},
            "additionalProperties": {"type": "object", "properties": {"g": {"type": "string"}}},
        },
        "closed": {"type": "object", "properties": {"known": {"type": "string"}}},
        "either": {
            "anyOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}},
                {"type": "object", "properties": {"b": {"type": "string"}}},
            ]
        },
        "merged": {
            "allOf": [
                {"properties": {"c": {"type": "string"}}},
                {"properties": {"d": {"type": "string"}}},
            ]
        },
        "maybe": {"type": ["null", "object"], "properties": {"e": {"type": "string"}}},
        "tree": {"$ref": "#/definitions/Node"},
        "free": {},
    },
    "definitions": {
        "Node": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}},
            },
        }
    },
}


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("tags.anything", None),  # additionalProperties: any key
        ('labels."x-trace"', None),  # patternProperties: any key
        ("mixed.known.f", None),
        ("mixed.other.g", None),  # properties plus an additionalProperties schema
        ("closed.other", "field 'closed.other' is not in the JSON Schema"),
        ("either.a", None),  # a field exists if any branch has it
        ("either.b", None),
        ("either.z", "field 'either.z' is not in the JSON Schema"),
        ("merged.c", None),
        ("merged.d", None),
        ("merged.z", "field 'merged.z' is not in the JSON Schema"),
        ("maybe.e", None),
        ("tree.children[*].children[*].name", None),  # a recursive $ref ends
        ("tree.children[*].nme", "field 'tree.children[*].nme' is not in the JSON Schema"),
        ("free.whatever.deeper", None),  # a schema without a type: not checked
        ("tags", None),
    ],
)
def test_json_schema_shapes_report_only_paths_that_cannot_exist(
    path: str, problem: str | None
) -> None:
    shape = json_schema_shape(SHAPE_SCHEMA, {})
    found = unknown_field_paths(shape, compile_expression(path).ast, "JSON Schema")
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1
        assert found[0].startswith(problem)


def test_protobuf_well_known_types_and_maps_have_their_json_shapes() -> None:
    shape = protobuf_shape(load_message_descriptor(ORDER_DESC, "shop.OrderEvent"))
    for path, problem in [
        ("attributes.anything", None),  # a map: any key
        ("placed_at.seconds", "field 'placed_at.seconds' is not in the Protobuf message"),
        ("coupon", None),  # a wrapper: its value
        ("items[*].unit_price_micros", None),
        ("customer.address.city", None),  # the imported message
        ("extra.anything.below", None),  # a Struct: any key, any value
        ("items_by_line.anything.sku", None),  # a map of messages
        ("items_by_line.anything.skew", "field 'items_by_line.anything.skew' is not in the"),
    ]:
        found = unknown_field_paths(shape, compile_expression(path).ast, "Protobuf message")
        if problem is None:
            assert found == [], path
        else:
            assert len(found) == 1, (path, found)
            assert found[0].startswith(problem), (path, found)
