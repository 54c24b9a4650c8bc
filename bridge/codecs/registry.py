"""A small Confluent Schema Registry client: writer schemas by id, cached.

It serves the three registry formats: Avro (parsed here, with fastavro), and the
raw texts of Protobuf and JSON Schema writer schemas with their references, which
``bridge.codecs.protobuf_codec`` and ``bridge.codecs.confluent_json`` parse with the
``protobuf`` and ``jsonschema`` libraries. Only the fetching is hand-written, for
the reasons below; parsing and decoding are the libraries'.

Why not ``confluent_kafka.schema_registry.SchemaRegistryClient``? In
confluent-kafka 2.16 it needs the ``schemaregistry`` extra: attrs, cachetools,
certifi, authlib and ``httpx2`` (a second HTTP stack beside the httpx the bridge
already has), and its errors do not tell an outage from a missing id the way the
bridge must (an outage is retried forever, a missing id is dead-lettered). The
bridge needs two read-only endpoints of the documented REST API, so this uses
httpx directly:

- ``GET /schemas/ids/{id}``: the schema text, ``schemaType`` (absent for Avro) and
  ``references`` (named types defined by other subjects);
- ``GET /subjects/{subject}/versions/{version}``: a referenced schema.

Protobuf schemas are asked for with ``?format=serialized``: the registry then
answers the base64 ``FileDescriptorProto`` (what confluent-kafka's own serializer
registers), because the Python ``protobuf`` library cannot parse ``.proto`` text.

Why not confluent-kafka's own ``ProtobufDeserializer`` / ``JSONDeserializer`` on
top of it: both need that registry client (the paragraph above), and both return a
message object or the document, not the bridge's categorised DecodeErrors; the
bridge needs only their one parsing step, which the libraries provide directly.

Every request runs under one overall deadline (``timeout``: connect, send,
headers and body together; it is also each phase's own httpx timeout) and its
answer is read up to ``MAX_ANSWER_BYTES`` (``bridge.bounded_http`` says how).

Outcomes: a parsed schema (cached per id for the life of the process, since an id
never changes meaning); ``404`` -> DecodeError ``unknown_schema_id``; a connection
failure, a timeout or the deadline, an answer over the cap, ``5xx``, ``408``,
``429``, ``401``/``403`` (credentials are a deployment problem, not the
record's) or an unreadable answer ->
:class:`~bridge.errors.SchemaRegistryUnavailable`, which the consumer retries.
Messages name the schema id and the HTTP status, never the URL (it may carry
credentials).
"""

from __future__ import annotations

import base64
import binascii
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import quote

import httpx
import orjson

from bridge.bounded_http import NO_COMPRESSION, Answer, BlockingHttp, is_deadline
from bridge.codecs.avro_schema import AvroSchema, SchemaFileError, parse_avro_schema_text
from bridge.errors import DecodeCode, DecodeError, SchemaRegistryUnavailable

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
# The most of one registry answer that is read. The largest real Avro schemas
# (generated from big domain models) are a few hundred KiB to a couple of MiB of
# JSON; 8 MiB holds any of them with room. A larger answer is not a schema the
# bridge could use (a proxy page, a misbehaving registry): it is treated like an
# unreadable answer, SchemaRegistryUnavailable, so the record is retried, not
# dead-lettered for the registry's fault, and the stall shows in
# vibes_bridge_oldest_unfinished_record_age_seconds.
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
_ACCEPT: Final = "application/vnd.schemaregistry.v1+json, application/json"
_MAX_REFERENCE_DEPTH: Final = 32
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ProtobufFiles:
    """A Protobuf writer schema: serialized ``FileDescriptorProto``s, each file after
    the files it imports (as far as the registry holds them), the schema's own last."""

    files: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class JsonSchemaDocument:
    """A JSON Schema writer schema and the schemas it references, by reference name
    (the name its ``$ref`` uses, e.g. ``address.json``)."""

    schema: dict[str, Any]
    references: dict[str, Any]


class SchemaRegistryClient:
    """Resolves Avro writer schemas by id; thread-safe; one HTTP connection pool."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        auth: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        http_client: httpx.AsyncClient | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        """``url`` is the registry's base URL (a path prefix is kept, e.g. Apicurio's
        ``/apis/ccompat/v7``); ``auth`` is HTTP Basic; ``tls`` verifies the server (a
        custom CA) and may hold a client certificate; ``http_client`` replaces the
        default one (proxies, tests); ``timeout`` bounds each request as a whole."""
        if not url.startswith(("http://", "https://")):
            raise ValueError("the Schema Registry URL must start with http:// or https://")
        client = http_client or httpx.AsyncClient(
            base_url=url,
            timeout=timeout,
            auth=auth,
            verify=tls if tls is not None else True,
            headers={"Accept": _ACCEPT, **NO_COMPRESSION},
        )
        self._http = BlockingHttp(client, owns_client=http_client is None)
        self._timeout = timeout
        self._max_answer_bytes = max_answer_bytes
        self._closed = False
        self._schemas: dict[int, AvroSchema] = {}
        self._protobuf: dict[int, ProtobufFiles] = {}
        self._json: dict[int, JsonSchemaDocument] = {}
        self._lock = threading.Lock()

    def schema(self, schema_id: int) -> AvroSchema:
        """The parsed writer schema registered under ``schema_id`` (cached)."""
        return self._cached(self._schemas, schema_id, self._fetch)

    def protobuf_files(self, schema_id: int) -> ProtobufFiles:
        """The Protobuf writer schema under ``schema_id`` with its imports (cached)."""
        return self._cached(self._protobuf, schema_id, self._fetch_protobuf)

    def json_schema(self, schema_id: int) -> JsonSchemaDocument:
        """The JSON Schema under ``schema_id`` with its references (cached)."""
        return self._cached(self._json, schema_id, self._fetch_json)

    def _cached(self, cache: dict[int, _T], schema_id: int, fetch: Callable[[int], _T]) -> _T:
        cached = cache.get(schema_id)  # no lock: a dict read is atomic
        if cached is not None:
            return cached
        with self._lock:
            cached = cache.get(schema_id)
            if cached is None:
                cached = fetch(schema_id)  # may raise; nothing is cached then
                cache[schema_id] = cached
            return cached

    def close(self) -> None:
        """Close the HTTP connections (only if this client opened them); idempotent."""
        if not self._closed:
            self._http.close()  # stops its loop thread; closes the client only if it made it
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _by_id(self, schema_id: int, query: str = "") -> tuple[dict[str, Any], str]:
        """The registry's answer for ``schema_id`` and how messages name it."""
        if self._closed:
            raise RuntimeError("the Schema Registry client is closed")
        where = f"schema id {schema_id}"
        answer = self._get(f"/schemas/ids/{schema_id}{query}", where)
        if answer is None:
            raise DecodeError(
                DecodeCode.UNKNOWN_SCHEMA_ID, f"the Schema Registry has no {where} (HTTP 404)"
            )
        return answer, where

    def _fetch(self, schema_id: int) -> AvroSchema:
        answer, where = self._by_id(schema_id)
        named: dict[str, Any] = {}
        self._parse_references(answer, named, where, depth=0)
        return self._parse(answer, named, where, require_record=True)

    def _fetch_protobuf(self, schema_id: int) -> ProtobufFiles:
        answer, where = self._by_id(schema_id, _SERIALIZED)
        files: dict[str, bytes] = {}  # reference name -> file, in import order
        for name, reference, ref_where in self._references(answer, where, 0, _SERIALIZED):
            files.setdefault(name, _descriptor_bytes(reference, ref_where, "PROTOBUF"))
        return ProtobufFiles((*files.values(), _descriptor_bytes(answer, where, "PROTOBUF")))

    def _fetch_json(self, schema_id: int) -> JsonSchemaDocument:
        answer, where = self._by_id(schema_id)
        references: dict[str, Any] = {}
        for name, reference, ref_where in self._references(answer, where, 0, ""):
            references.setdefault(name, _json_document(reference, ref_where))
        return JsonSchemaDocument(_json_document(answer, where), references)

    def _references(
        self, answer: dict[str, Any], where: str, depth: int, query: str
    ) -> list[tuple[str, dict[str, Any], str]]:
        """Every schema ``answer`` references, transitively, each after its own
        references: (reference name, the registry's answer, how messages name it)."""
        if depth > _MAX_REFERENCE_DEPTH:
            raise DecodeError(
                DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where}: references nest too deeply"
            )
        found: list[tuple[str, dict[str, Any], str]] = []
        for reference in answer.get("references") or []:
            name, subject, version = _reference_parts(reference, where)
            ref_where = f"{where}: reference {subject!r} version {version}"
            path = f"/subjects/{quote(subject, safe='')}/versions/{version}{query}"
            ref = self._get(path, ref_where)
            if ref is None:
                raise DecodeError(
                    DecodeCode.UNKNOWN_SCHEMA_REFERENCE, f"the Schema Registry has no {ref_where}"
                )
            found += self._references(ref, ref_where, depth + 1, query)
            found.append((name, ref, ref_where))
        return found

    def _parse_references(
        self, answer: dict[str, Any], named: dict[str, Any], where: str, depth: int
    ) -> None:
        """Parse every referenced schema first, into ``named`` (depth first)."""
        references = answer.get("references") or []
        if depth > _MAX_REFERENCE_DEPTH:
            raise DecodeError(
                DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where}: references nest too deeply"
            )
        for reference in references:
            subject = reference.get("subject") if isinstance(reference, dict) else None
            version = reference.get("version") if isinstance(reference, dict) else None
            if not isinstance(subject, str) or not isinstance(version, int):
                raise SchemaRegistryUnavailable(
                    f"the Schema Registry answered an unreadable reference for {where}"
                )
            ref_where = f"{where}: reference {subject!r} version {version}"
            ref = self._get(f"/subjects/{quote(subject, safe='')}/versions/{version}", ref_where)
            if ref is None:
                raise DecodeError(
                    DecodeCode.UNKNOWN_SCHEMA_REFERENCE, f"the Schema Registry has no {ref_where}"
                )
            self._parse_references(ref, named, ref_where, depth + 1)
            self._parse(ref, named, ref_where, require_record=False)

    @staticmethod
    def _parse(
        answer: dict[str, Any], named: dict[str, Any], where: str, *, require_record: bool
    ) -> AvroSchema:
        kind = answer.get("schemaType", "AVRO")
        if kind != "AVRO":
            raise DecodeError(
                DecodeCode.UNSUPPORTED_SCHEMA_TYPE, f"{where} is a {kind} schema, not an Avro one"
            )
        text = answer.get("schema")
        if not isinstance(text, str):
            raise SchemaRegistryUnavailable(
                f"the Schema Registry answered no schema text for {where}"
            )
        try:
            return parse_avro_schema_text(text, require_record=require_record, named_schemas=named)
        except SchemaFileError as exc:
            raise DecodeError(DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where}: {exc}") from None

    def _get(self, path: str, where: str) -> dict[str, Any] | None:
        """The JSON object at ``path``, ``None`` for 404; raises for the rest."""
        response = self._request(path, where)
        if response.status == 404:
            return None
        if response.status != 200:
            raise SchemaRegistryUnavailable(
                f"the Schema Registry answered HTTP {response.status} resolving {where}"
            )
        if response.truncated:
            raise SchemaRegistryUnavailable(
                f"the Schema Registry answered more than {self._max_answer_bytes} bytes"
                f" resolving {where}; the rest was discarded"
            )
        try:
            answer = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise SchemaRegistryUnavailable(
                f"the Schema Registry answered something other than a JSON object for {where}"
            )
        return answer

    def _request(self, path: str, where: str) -> Answer:
        try:
            return self._http.request(
                "GET", path, deadline_seconds=self._timeout, limit=self._max_answer_bytes
            )
        except (TimeoutError, httpx.HTTPError) as exc:
            if is_deadline(exc):
                raise SchemaRegistryUnavailable(
                    f"the Schema Registry timed out resolving {where}"
                    f" (no whole answer within {self._timeout:g} s)"
                ) from None
            # connection refused, reset, TLS, protocol ...
            raise SchemaRegistryUnavailable(
                f"the Schema Registry is unreachable resolving {where} ({type(exc).__name__})"
            ) from None


_SERIALIZED: Final = "?format=serialized"


def _reference_parts(reference: Any, where: str) -> tuple[str, str, int]:
    """A reference's name, subject and version, or SchemaRegistryUnavailable."""
    parts = (
        (reference.get("name"), reference.get("subject"), reference.get("version"))
        if isinstance(reference, dict)
        else (None, None, None)
    )
    name, subject, version = parts
    if not (isinstance(name, str) and isinstance(subject, str) and isinstance(version, int)):
        raise SchemaRegistryUnavailable(
            f"the Schema Registry answered an unreadable reference for {where}"
        )
    return name, subject, version


def _schema_text(answer: dict[str, Any], where: str, kind: str) -> str:
    found = answer.get("schemaType", "AVRO")
    if found != kind:
        raise DecodeError(
            DecodeCode.UNSUPPORTED_SCHEMA_TYPE, f"{where} is a {found} schema, not a {kind} one"
        )
    text = answer.get("schema")
    if not isinstance(text, str):
        raise SchemaRegistryUnavailable(f"the Schema Registry answered no schema text for {where}")
    return text


def _descriptor_bytes(answer: dict[str, Any], where: str, kind: str) -> bytes:
    """The serialized FileDescriptorProto of a ``?format=serialized`` answer."""
    text = _schema_text(answer, where, kind)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise DecodeError(
            DecodeCode.INVALID_REGISTRY_SCHEMA,
            f"{where} is not a serialized Protobuf descriptor (the registry must answer"
            " ?format=serialized with base64)",
        ) from None


def _json_document(answer: dict[str, Any], where: str) -> Any:
    text = _schema_text(answer, where, "JSON")
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise DecodeError(
            DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where} is not a JSON document"
        ) from None
    if not isinstance(document, dict | bool):
        raise DecodeError(DecodeCode.INVALID_REGISTRY_SCHEMA, f"{where} is not a JSON Schema")
    return document
