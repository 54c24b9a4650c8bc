"""The confluent-json codec: records from confluent-kafka's own JSONSerializer, whose
schema references another registry subject (``address.json``), against the test
Schema Registry; validation only when the source asks for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.codecs import ConfluentJsonDecoder, SchemaRegistryClient, make_decoder
from bridge.errors import DecodeError
from tests.codecs.helpers import assert_dict_or_decode_error
from tests.support.protobuf import json_serialize, json_serializer
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)

VALID: dict[str, Any] = {
    "order_id": "ORD-1",
    "status": "CONFIRMED",
    "customer": {
        "id": "CUST-7",
        "phone": "+14155550142",
        "address": {"city": "Springfield", "postal_code": "12345"},
    },
    "items": [{"sku": "MUG", "quantity": 1}],
    "total": 12.5,
}


@pytest.fixture(scope="module")
def registry() -> Iterator[TestSchemaRegistry]:
    with running_schema_registry() as running:
        yield running


@pytest.fixture(scope="module")
def framed(registry: TestSchemaRegistry) -> bytes:
    serializer = json_serializer(registry.url, "address-value", registry)
    return json_serialize(serializer, "orders-json", VALID)


@pytest.fixture(scope="module")
def client(registry: TestSchemaRegistry) -> Iterator[SchemaRegistryClient]:
    with SchemaRegistryClient(registry.url) as shared:
        yield shared


def _decoder(client: SchemaRegistryClient, *, validate: bool) -> ConfluentJsonDecoder:
    decoder = make_decoder("confluent-json", registry=client, validate=validate)
    assert isinstance(decoder, ConfluentJsonDecoder)
    return decoder


def _with(framed: bytes, value: Any) -> bytes:
    """``value`` under the same schema id as ``framed`` (JSONSerializer itself validates,
    so documents that fail their schema are framed by hand)."""
    return framed[:5] + orjson.dumps(value)


@pytest.mark.parametrize("validate", [False, True])
def test_records_from_confluents_serializer_decode(
    client: SchemaRegistryClient, framed: bytes, validate: bool
) -> None:
    assert _decoder(client, validate=validate).decode(framed) == VALID


def _changed(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    document: Any = json.loads(json.dumps(VALID))
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    result: dict[str, Any] = document
    return result


@pytest.mark.parametrize(
    ("document", "keyword", "where"),
    [
        (_changed(("customer", "phone"), 4155550142), "type", "properties/phone/type"),
        (_changed(("status",), "LOST"), "enum", "properties/status/enum"),
        (_changed(("items", 0, "quantity"), "seven"), "type", "quantity/type"),  # via a $ref
        # In the referenced subject (address.json): its reference was resolved.
        (_changed(("customer", "address", "postal_code"), "ABCDE"), "pattern", "postal_code"),
        ({"order_id": "ORD-1"}, "required", "required"),
    ],
)
def test_a_document_failing_its_schema_is_a_schema_violation_when_validating(
    client: SchemaRegistryClient, framed: bytes, document: Any, keyword: str, where: str
) -> None:
    data = _with(framed, document)
    with pytest.raises(DecodeError) as raised:
        _decoder(client, validate=True).decode(data)
    assert raised.value.code == "schema_violation"
    assert repr(keyword) in raised.value.message
    assert where in raised.value.message
    # The value (person data) is never in the message.
    for secret in ("4155550142", "LOST", "ABCDE", "seven"):
        assert secret not in raised.value.message
    # Without validate: the same document decodes: validation is only when asked.
    assert _decoder(client, validate=False).decode(data) == document


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, "null_value"),
        (b"\x00\x00", "truncated"),
        (b"{" + b"\x00" * 8, "bad_magic_byte"),
        (confluent_frame(987_654, b"{}"), "unknown_schema_id"),
    ],
)
def test_bytes_without_a_known_header_are_decode_errors(
    client: SchemaRegistryClient, data: bytes | None, code: str
) -> None:
    with pytest.raises(DecodeError) as raised:
        _decoder(client, validate=False).decode(data)
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "invalid_json"),
        (b'{"order_id": ', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'{"a": "\xff"}', "invalid_utf8"),
        (b"[" * 2000 + b"]" * 2000, "too_deep"),
    ],
)
def test_bodies_that_are_not_json_objects_take_the_json_formats_codes(
    client: SchemaRegistryClient, framed: bytes, body: bytes, code: str
) -> None:
    for validate in (False, True):
        with pytest.raises(DecodeError) as raised:
            _decoder(client, validate=validate).decode(framed[:5] + body)
        assert raised.value.code == code


def test_a_deep_document_that_parses_is_refused_not_crashed_by_validation(
    registry: TestSchemaRegistry, client: SchemaRegistryClient
) -> None:
    # A schema that recurses through itself, and a document 1,000 levels deep:
    # orjson accepts it, jsonschema would exhaust the stack.
    schema = {"type": "object", "properties": {"a": {"$ref": "#"}}}
    schema_id = registry.register("deep", json.dumps(schema), schema_type="JSON")
    body = b'{"a":' * 1000 + b"{}" + b"}" * 1000
    with pytest.raises(DecodeError) as raised:
        _decoder(client, validate=True).decode(confluent_frame(schema_id, body))
    assert raised.value.code == "too_deep"


@pytest.mark.parametrize(
    ("text", "schema_type", "code"),
    [
        ('{"type": "record", "name": "R", "fields": []}', "AVRO", "unsupported_schema_type"),
        ('{"type": "nonsense"}', "JSON", "invalid_registry_schema"),
        ('"a string"', "JSON", "invalid_registry_schema"),
        # A regular expression that does not compile would fail every document: refused.
        ('{"properties": {"a": {"pattern": "("}}}', "JSON", "invalid_registry_schema"),
        ('{"patternProperties": {"(": {}}}', "JSON", "invalid_registry_schema"),
    ],
)
def test_registry_schemas_that_cannot_validate_are_decode_errors(
    registry: TestSchemaRegistry,
    client: SchemaRegistryClient,
    text: str,
    schema_type: str,
    code: str,
) -> None:
    schema_id = registry.register(f"s-{code}-{len(text)}", text, schema_type=schema_type)
    with pytest.raises(DecodeError) as raised:
        _decoder(client, validate=True).decode(confluent_frame(schema_id, b"{}"))
    assert raised.value.code == code


def test_a_ref_to_nothing_is_invalid_registry_schema(
    registry: TestSchemaRegistry, client: SchemaRegistryClient
) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "missing.json"}}}
    schema_id = registry.register("dangling-json", json.dumps(schema), schema_type="JSON")
    with pytest.raises(DecodeError) as raised:
        _decoder(client, validate=True).decode(confluent_frame(schema_id, b'{"a": 1}'))
    assert raised.value.code == "invalid_registry_schema"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(min_value=0, max_value=400), garbage=st.binary(max_size=100))
def test_truncations_and_garbage_are_a_dict_or_a_decode_error(
    client: SchemaRegistryClient, framed: bytes, cut: int, garbage: bytes
) -> None:
    for validate in (False, True):
        decoder = _decoder(client, validate=validate)
        assert_dict_or_decode_error(decoder.decode, framed[:cut])
        assert_dict_or_decode_error(decoder.decode, framed[:5] + garbage)
        assert_dict_or_decode_error(decoder.decode, framed[: min(cut, len(framed))] + garbage)
