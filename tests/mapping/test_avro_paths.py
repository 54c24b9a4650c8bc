"""The static check of rule paths against an Avro schema."""

from __future__ import annotations

from typing import Any

import fastavro
import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.codecs import AvroSchema
from bridge.mapping.avro_paths import unknown_field_paths


def check(schema: AvroSchema, expression: str) -> list[str]:
    return unknown_field_paths(schema, jmespath.compile(expression).parsed)


# Paths a shipment rule may read: none may be reported.
GOOD = [
    "shipment_id",
    "status == 'SHIPPED' && customer.sms_opt_in",
    "customer.first_name",
    "customer.phone",
    "customer.push_device_id",
    "items[*].sku",
    "items[0].unit_price",
    "items[-1].name",
    "items[0:2].quantity",
    "items[::2][0].sku",  # [0] of each LineItem: null, not checked
    "!customer.nope",  # (!customer).nope: a field of a boolean is not checked
    "items[?quantity > `1`].sku",
    "items[?quantity > `1` && unit_price != '0.00'] | [0].name",
    "items[].sku",
    "length(items)",
    "sort_by(items, &quantity)[0].name",
    "max_by(items, &quantity).sku",
    "map(&sku, items)",
    "join(', ', items[*].name)",
    "address.city",
    "address.anything_at_all",
    "address.*",
    "@.customer.id",
    "customer | @.id",
    "not_null(customer.phone, customer.email)",
    "customer.phone || customer.email",
    "to_array(customer)[0].first_name",
    "{a: customer.id, b: shipment_id}",
    "[customer.id, order_id]",
    '`{"x": 1}`.x.y.z',
    "'literal'",
    "merge(customer, `{}`).whatever",
    "customer | first_name",
    "items | [0] | sku",
    "_kafka.topic",
    "_kafka.key",
    "_kafka.headers.traceparent",
    "_kafka.timestamp",
    "estimated_delivery",
    "!customer.sms_opt_in",
    "customer.*",
    "*.first_name",
    "tracking_number && `true`",
]


@pytest.mark.parametrize("expression", GOOD)
def test_paths_that_exist_are_not_reported(shipment_schema: AvroSchema, expression: str) -> None:
    assert check(shipment_schema, expression) == []


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        (
            "customer.phon",
            "field 'customer.phon' is not in the Avro schema (record 'Customer' has: "
            "email, first_name, id, phone, push_device_id, sms_opt_in)",
        ),
        (
            "shipment",
            "field 'shipment' is not in the Avro schema (record 'ShipmentEvent' has: address, "
            "carrier, customer, estimated_delivery, event_id, event_time, items, order_id, "
            "shipment_id, shipped_at, status, tracking_number)",
        ),
        ("items[*].skuu", "field 'items[*].skuu' is not in the Avro schema (record 'LineItem'"),
        ("items[0].skuu", "field 'items[0].skuu'"),
        ("items[1:3].skuu", "field 'items[1:3].skuu'"),
        ("items[::2] | [0].skuu", "field 'items[::2] | [0].skuu'"),
        ("items[].skuu", "field 'items[].skuu'"),
        ("items[?qty > `1`].sku", "field 'items[*].qty'"),
        ("items[?quantity > `1`].skuu", "field 'items[*].skuu'"),
        ("sort_by(items, &qty)", "field 'items[*].qty'"),
        ("map(&nme, items)", "field 'items[*].nme'"),
        ("length(customer.phon)", "field 'customer.phon'"),
        ("customer.phon || customer.email", "field 'customer.phon'"),
        ("{a: customer.nope}", "field 'customer.nope'"),
        ("[customer.nope]", "field 'customer.nope'"),
        ("!(customer.nope)", "field 'customer.nope'"),
        ("customer.nope == 'x'", "field 'customer.nope'"),
        ("items | [0] | skuu", "field 'items | [0] | skuu'"),
        (
            "items.sku",
            "field 'items.sku' is not in the Avro schema (items is an array); "
            "use items[*].sku for each element",
        ),
        ("customer.first_name.initial", "(customer.first_name is a string)"),
        ("status.code", "(status is an enum)"),
        (
            "_kafka.topc",
            "field '_kafka.topc' is not in the record metadata "
            "(_kafka has: headers, key, offset, partition, timestamp, topic)",
        ),
        ("@.customer.phon", "field 'customer.phon'"),
    ],
)
def test_unknown_paths_are_reported(
    shipment_schema: AvroSchema, expression: str, problem: str
) -> None:
    problems = check(shipment_schema, expression)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem) or problem in problems[0]


def test_each_problem_is_reported_once(shipment_schema: AvroSchema) -> None:
    problems = check(shipment_schema, "[customer.phon, customer.phon, items[*].x, items[0].x]")
    assert problems == [
        "field 'customer.phon' is not in the Avro schema (record 'Customer' has: "
        "email, first_name, id, phone, push_device_id, sms_opt_in)",
        "field 'items[*].x' is not in the Avro schema (record 'LineItem' has: "
        "name, quantity, sku, unit_price)",
        "field 'items[0].x' is not in the Avro schema (record 'LineItem' has: "
        "name, quantity, sku, unit_price)",
    ]


def test_a_field_after_a_value_projection_follows_jmespath(shipment_schema: AvroSchema) -> None:
    # jmespath parses customer.*.x.y as (customer.*.x).y: y is looked up on a list.
    assert check(shipment_schema, "address.*.length") == [
        "field 'address.*.length' is not in the Avro schema (address.* is a string)"
    ]


def test_checking_stops_after_the_first_unknown_field(shipment_schema: AvroSchema) -> None:
    assert check(shipment_schema, "customer.phon.e.f") == [
        "field 'customer.phon' is not in the Avro schema (record 'Customer' has: "
        "email, first_name, id, phone, push_device_id, sms_opt_in)"
    ]


def _record(name: str, *fields: tuple[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}


def test_named_types_used_later_and_recursion_resolve() -> None:
    schema = fastavro.parse_schema(
        _record(
            "Tree",
            ("left", ["null", "Tree"]),
            ("leaf", _record("Leaf", ("value", "string"))),
            ("leaves", {"type": "array", "items": "Leaf"}),
        )
    )
    assert check(schema, "left.left.left.leaf.value") == []
    assert check(schema, "leaves[*].value") == []
    assert check(schema, "left.leaves[0].valu") == [
        "field 'left.leaves[0].valu' is not in the Avro schema (record 'Leaf' has: value)"
    ]


def test_general_unions_accept_a_field_of_any_record_branch() -> None:
    schema = fastavro.parse_schema(
        _record(
            "E",
            (
                "payload",
                [
                    "null",
                    _record("Card", ("last4", "string")),
                    _record("Wallet", ("provider", "string")),
                    "string",
                ],
            ),
        )
    )
    assert check(schema, "payload.last4") == []
    assert check(schema, "payload.provider") == []
    problems = check(schema, "payload.iban")
    assert problems == [
        "field 'payload.iban' is not in the Avro schema (record 'Card' has: last4; "
        "record 'Wallet' has: provider; payload is a string)"
    ]


def test_maps_allow_any_key_and_type_their_values() -> None:
    schema = fastavro.parse_schema(
        _record(
            "E",
            ("attrs", {"type": "map", "values": _record("Attr", ("v", "string"))}),
            ("mixed", ["null", _record("R", ("a", "int")), {"type": "map", "values": "string"}]),
        )
    )
    assert check(schema, "attrs.colour.v") == []
    assert check(schema, "attrs.*.v") == []
    assert check(schema, "mixed.anything") == []
    assert check(schema, "attrs.colour.w") == [
        "field 'attrs.colour.w' is not in the Avro schema (record 'Attr' has: v)"
    ]
    assert check(schema, "attrs.*.w") == [
        "field 'attrs.*.w' is not in the Avro schema (record 'Attr' has: v)"
    ]


def test_a_top_level_union_of_records() -> None:
    schema = fastavro.parse_schema([_record("A", ("a", "int")), _record("B", ("b", "int"))])
    assert check(schema, "a") == []
    assert check(schema, "b") == []
    assert check(schema, "_kafka.offset") == []
    assert len(check(schema, "c")) == 1


def test_a_record_field_named_like_the_metadata_key_is_shadowed() -> None:
    # The engine puts _kafka on the document, over any field of that name.
    schema = fastavro.parse_schema(_record("E", ("_kafka", "string")))
    assert check(schema, "_kafka.partition") == []


def test_unknown_functions_still_check_their_arguments(shipment_schema: AvroSchema) -> None:
    tree = {
        "type": "function_expression",
        "value": "e164_custom",
        "children": [jmespath.compile("customer.phon").parsed],
    }
    assert len(unknown_field_paths(shipment_schema, tree)) == 1
    tree = {"type": "subexpression", "children": [tree, {"type": "field", "value": "x"}]}
    assert len(unknown_field_paths(shipment_schema, tree)) == 1


# ---------------------------------------------------------------- property: no false errors

NAMES = st.sampled_from(["a", "b", "c", "id", "name", "items", "value", "x_y"])
PRIMITIVES = st.sampled_from(["string", "int", "long", "boolean", "double", "bytes"])


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, Any]:
    counter = iter(range(10_000))

    def record(depth: int) -> dict[str, Any]:
        names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
        return {
            "type": "record",
            "name": f"R{next(counter)}",
            "fields": [{"name": n, "type": kind(depth + 1)} for n in names],
        }

    def kind(depth: int) -> Any:
        if depth > 3:
            return draw(PRIMITIVES)
        choice = draw(st.integers(0, 5))
        if choice == 0:
            return record(depth)
        if choice == 1:
            return {"type": "array", "items": kind(depth + 1)}
        if choice == 2:
            return {"type": "map", "values": kind(depth + 1)}
        if choice == 3:
            return ["null", kind(depth + 1)]
        return draw(PRIMITIVES)

    return record(0)


def existing_paths(node: Any, prefix: str, out: list[str]) -> None:
    """JMESPath expressions that read something that exists in ``node``'s values."""
    if isinstance(node, list):
        for branch in node:
            existing_paths(branch, prefix, out)
        return
    if not isinstance(node, dict):
        return
    kind = node["type"]
    if kind == "record":
        for field in node["fields"]:
            path = f"{prefix}.{field['name']}" if prefix else field["name"]
            out.append(path)
            existing_paths(field["type"], path, out)
    elif kind == "array" and prefix:
        out.append(f"{prefix}[*]")
        out.append(f"{prefix}[0]")
        existing_paths(node["items"], f"{prefix}[*]", out)
        existing_paths(node["items"], f"{prefix}[0]", out)
        existing_paths(node["items"], f"{prefix}[?@ != `null`]", out)
    elif kind == "map" and prefix:
        out.append(f"{prefix}.anykey")
        existing_paths(node["values"], f"{prefix}.anykey", out)
        out.append(f"{prefix}.*")
        values = node["values"]
        if isinstance(values, dict) and values["type"] == "record":
            # jmespath (1.1) parses a.*.b.c as (a.*.b).c, a field of a list: only
            # one step after a value projection reaches into the values.
            out.extend(f"{prefix}.*.{field['name']}" for field in values["fields"])


@settings(max_examples=150, deadline=None)
@given(schemas())
def test_paths_that_exist_in_a_generated_schema_are_never_reported(
    document: dict[str, Any],
) -> None:
    schema = fastavro.parse_schema(document)
    paths: list[str] = []
    existing_paths(document, "", paths)
    for path in paths:
        assert check(schema, path) == [], path
        assert check(schema, f"length({path})") == [], path
        assert check(schema, f"{path} || _kafka.topic") == [], path


@settings(max_examples=100, deadline=None)
@given(schemas(), st.sampled_from(["zz", "nope", "missing_field"]))
def test_a_missing_top_level_field_is_always_reported(document: dict[str, Any], name: str) -> None:
    schema = fastavro.parse_schema(document)
    assert len(check(schema, name)) == 1
