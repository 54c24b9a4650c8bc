"""The confluent-avro codec against the test Schema Registry, over real HTTP.

The registry is tests/support/schema_registry.py (see its docstring for why it is
not a real registry): it serves the documented Confluent endpoints on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.codecs import (
    AvroSchema,
    ConfluentAvroDecoder,
    SchemaRegistryClient,
    make_decoder,
)
from bridge.codecs.avro_schema import parse_avro_schema_text
from bridge.errors import DecodeError, SchemaRegistryUnavailable, TransientError
from devtools.avro_encode import encode_avro
from tests.codecs.helpers import assert_dict_or_decode_error
from tests.support.paths import SCHEMAS
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)

SHIPMENT_TEXT = (SCHEMAS / "shipment_event.avsc").read_text()


def _decoder(registry: TestSchemaRegistry, **options: Any) -> ConfluentAvroDecoder:
    return ConfluentAvroDecoder(SchemaRegistryClient(registry.url, **options))


def _registered_shipment(
    registry: TestSchemaRegistry, schema: AvroSchema, example: dict[str, Any]
) -> tuple[int, bytes]:
    """Register the shipment schema; its id and the example framed with it."""
    schema_id = registry.register("s", SHIPMENT_TEXT)
    return schema_id, confluent_frame(schema_id, encode_avro(schema, example))


def test_a_known_id_decodes(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    schema_id = schema_registry.register("shop.shipments-value", SHIPMENT_TEXT)
    data = confluent_frame(schema_id, encode_avro(shipment_schema, shipment_example))
    decoder = make_decoder("confluent-avro", registry_url=schema_registry.url)
    assert decoder.decode(data) == shipment_example


def test_registering_over_http_gives_the_id_the_decoder_resolves(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    response = httpx.post(
        f"{schema_registry.url}/subjects/shop.shipments-value/versions",
        json={"schema": SHIPMENT_TEXT},
    )
    schema_id = response.json()["id"]
    assert httpx.get(f"{schema_registry.url}/subjects").json() == ["shop.shipments-value"]
    data = confluent_frame(schema_id, encode_avro(shipment_schema, shipment_example))
    assert _decoder(schema_registry).decode(data)["shipment_id"] == "SHP-20261127-000042"


def test_the_schema_is_fetched_once_per_id(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    schema_id, data = _registered_shipment(schema_registry, shipment_schema, shipment_example)
    decoder = _decoder(schema_registry)
    decoder.decode(data)
    assert schema_registry.requests == [("GET", f"/schemas/ids/{schema_id}")]
    schema_registry.stop()  # a cached id needs no registry at all
    for _ in range(3):
        assert decoder.decode(data) == shipment_example


def test_an_unknown_id_is_a_decode_error(schema_registry: TestSchemaRegistry) -> None:
    with pytest.raises(DecodeError) as caught:
        _decoder(schema_registry).decode(confluent_frame(4242, b"\x00"))
    assert caught.value.code == "unknown_schema_id"
    assert "4242" in caught.value.message


def test_a_stopped_registry_is_transient_and_nothing_is_cached(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    _schema_id, data = _registered_shipment(schema_registry, shipment_schema, shipment_example)
    decoder = _decoder(schema_registry, timeout=2.0)
    schema_registry.stop()
    with pytest.raises(SchemaRegistryUnavailable) as caught:
        decoder.decode(data)
    assert isinstance(caught.value, TransientError)
    assert "127.0.0.1" not in str(caught.value)  # the URL may hold credentials
    schema_registry.start()  # the same port: the retry succeeds
    assert decoder.decode(data) == shipment_example


@pytest.mark.parametrize("status", [500, 502, 503, 429, 401, 403])
def test_server_errors_are_transient(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
    status: int,
) -> None:
    _schema_id, data = _registered_shipment(schema_registry, shipment_schema, shipment_example)
    decoder = _decoder(schema_registry)
    schema_registry.fail_with(status)
    with pytest.raises(SchemaRegistryUnavailable, match=str(status)):
        decoder.decode(data)
    schema_registry.fail_with(None)
    assert decoder.decode(data) == shipment_example


def test_a_slow_registry_times_out_as_transient(schema_registry: TestSchemaRegistry) -> None:
    schema_id = schema_registry.register("s", SHIPMENT_TEXT)
    schema_registry.set_delay(1.0)
    with pytest.raises(SchemaRegistryUnavailable, match="timed out"):
        _decoder(schema_registry, timeout=0.2).decode(confluent_frame(schema_id, b""))


def test_a_non_registry_answer_is_transient() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>a proxy page</html>")

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://registry")
    decoder = ConfluentAvroDecoder(SchemaRegistryClient("http://registry", http_client=client))
    with pytest.raises(SchemaRegistryUnavailable, match="JSON object"):
        decoder.decode(confluent_frame(1, b""))


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, "null_value"),
        (b"", "truncated"),
        (b"\x00\x00\x00", "truncated"),
        (b"\x00\x00\x00\x00", "truncated"),
        (b"\x01\x00\x00\x00\x01\x02", "bad_magic_byte"),
        (b'{"json": "instead"}', "bad_magic_byte"),
    ],
)
def test_bad_frames_are_decode_errors_without_asking_the_registry(
    schema_registry: TestSchemaRegistry, data: bytes | None, code: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        _decoder(schema_registry).decode(data)
    assert caught.value.code == code
    assert schema_registry.requests == []


def test_a_bad_body_after_a_good_header_is_a_decode_error(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    schema_id = schema_registry.register("s", SHIPMENT_TEXT)
    body = encode_avro(shipment_schema, shipment_example)
    decoder = _decoder(schema_registry)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(confluent_frame(schema_id, body[:-3]))
    assert caught.value.code == "truncated"
    with pytest.raises(DecodeError) as caught:
        decoder.decode(confluent_frame(schema_id, body + b"\x00"))
    assert caught.value.code == "trailing_bytes"


def test_non_avro_and_invalid_registry_schemas_are_decode_errors(
    schema_registry: TestSchemaRegistry,
) -> None:
    proto = schema_registry.register("p", 'syntax = "proto3";', schema_type="PROTOBUF")
    broken = schema_registry.register("b", '{"type": "record", "name": "X"}')
    decoder = _decoder(schema_registry)
    with pytest.raises(DecodeError) as caught:
        decoder.decode(confluent_frame(proto, b""))
    assert caught.value.code == "unsupported_schema_type"
    with pytest.raises(DecodeError) as caught:
        decoder.decode(confluent_frame(broken, b""))
    assert caught.value.code == "invalid_registry_schema"


def test_schema_references_are_resolved(schema_registry: TestSchemaRegistry) -> None:
    customer = {
        "type": "record",
        "name": "Customer",
        "namespace": "com.example.shop",
        "fields": [
            {"name": "id", "type": "string"},
            {"name": "since", "type": {"type": "int", "logicalType": "date"}},
        ],
    }
    schema_registry.register("com.example.shop.Customer", customer)
    event = {
        "type": "record",
        "name": "Event",
        "namespace": "com.example.shop",
        "fields": [{"name": "customer", "type": "com.example.shop.Customer"}],
    }
    schema_id = schema_registry.register(
        "e-value",
        event,
        references=[
            {
                "name": "com.example.shop.Customer",
                "subject": "com.example.shop.Customer",
                "version": 1,
            }
        ],
    )
    body = b"\x06abc\x02"  # "abc", 1 day after 1970-01-01
    assert _decoder(schema_registry).decode(confluent_frame(schema_id, body)) == {
        "customer": {"id": "abc", "since": "1970-01-02"}
    }


def test_a_reader_schema_resolves_an_older_writer(
    schema_registry: TestSchemaRegistry, tmp_path: Any
) -> None:
    writer = {
        "type": "record",
        "name": "E",
        "fields": [{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}],
    }
    reader = {
        "type": "record",
        "name": "E",
        "fields": [
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "channel", "type": "string", "default": "web"},
        ],
    }
    schema_id = schema_registry.register("e", writer)
    reader_path = tmp_path / "reader.avsc"
    reader_path.write_text(json.dumps(reader))
    decoder = make_decoder(
        "confluent-avro", schema_path=reader_path, registry_url=schema_registry.url
    )
    assert decoder.decode(confluent_frame(schema_id, b"\xd0\x0f")) == {
        "at": "1970-01-01T00:00:01.000Z",
        "channel": "web",
    }


def test_an_incompatible_writer_is_a_decode_error(schema_registry: TestSchemaRegistry) -> None:
    writer = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "string"}]}
    reader = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "int"}]}
    schema_id = schema_registry.register("e", writer)
    decoder = ConfluentAvroDecoder(
        SchemaRegistryClient(schema_registry.url),
        reader_schema=parse_avro_schema_text(json.dumps(reader)),
    )
    with pytest.raises(DecodeError) as caught:
        decoder.decode(confluent_frame(schema_id, b"\x02x"))
    assert caught.value.code == "schema_mismatch"


def test_concurrent_first_decodes_fetch_once(
    schema_registry: TestSchemaRegistry,
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
) -> None:
    _schema_id, data = _registered_shipment(schema_registry, shipment_schema, shipment_example)
    decoder = _decoder(schema_registry)
    schema_registry.set_delay(0.2)
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(decoder.decode(data))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == [shipment_example] * 4
    assert len(schema_registry.requests) == 1


def test_the_registry_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        SchemaRegistryClient("localhost:8081")
    with pytest.raises(ValueError, match="Schema Registry URL"):
        make_decoder("confluent-avro")


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200))
def test_fuzz_bodies_behind_a_known_id(schema_registry: TestSchemaRegistry, body: bytes) -> None:
    schema_id = schema_registry.register("s", SHIPMENT_TEXT)
    decoder = _FUZZ_DECODERS.get(schema_registry.url)
    if decoder is None:
        decoder = _FUZZ_DECODERS[schema_registry.url] = _decoder(schema_registry)
    assert_dict_or_decode_error(lambda d: decoder.decode(confluent_frame(schema_id, d)), body)


@settings(max_examples=200)
@given(data=st.binary(max_size=40))
def test_fuzz_whole_frames_never_escape(data: bytes) -> None:
    # No registry behind this one: any id reaches an unreachable URL -> transient.
    try:
        value = _OFFLINE_DECODER.decode(data)
    except (DecodeError, SchemaRegistryUnavailable):
        pass
    else:
        assert isinstance(value, dict)


_FUZZ_DECODERS: dict[str, ConfluentAvroDecoder] = {}
_OFFLINE_DECODER = ConfluentAvroDecoder(
    SchemaRegistryClient("http://127.0.0.1:9", timeout=0.5)  # port 9 (discard): refused
)


@pytest.mark.parametrize(
    ("auth", "decodes"),
    [(("reader", "pw-S3cr3t"), True), (("reader", "wrong-S3cr3t"), False), (None, False)],
)
def test_basic_auth_is_sent_and_a_refusal_is_transient(
    shipment_schema: AvroSchema,
    shipment_example: dict[str, Any],
    auth: tuple[str, str] | None,
    decodes: bool,
) -> None:
    with running_schema_registry(auth=("reader", "pw-S3cr3t")) as registry:
        _, data = _registered_shipment(registry, shipment_schema, shipment_example)
        decoder = _decoder(registry, auth=auth)
        if decodes:
            assert decoder.decode(data) == shipment_example
            assert registry.unauthorized == 0
            return
        with pytest.raises(SchemaRegistryUnavailable, match="HTTP 401") as caught:
            decoder.decode(data)
        assert "S3cr3t" not in str(caught.value)
        assert registry.unauthorized == 1
