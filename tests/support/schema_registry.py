"""A small Confluent-compatible Schema Registry for tests, over real HTTP on 127.0.0.1.

Why not a real registry: none can run on this machine without Docker. Confluent's
own is not on the registries reachable here; Karapace is not on PyPI; Apicurio
Registry's ``apicurio-registry-app`` on Maven Central is a plain jar that still
needs a Quarkus build, 3.3.3 is compiled for Java 21 (the machine has 17), and both
3.3.3 and 2.6.13.Final depend on Confluent serializer artifacts that are only
published on Confluent's own Maven repository, so neither could be built.

This server implements the documented Confluent REST endpoints the bridge and its
tests use, with the documented JSON shapes and error codes:

- ``GET  /schemas/ids/{id}``: ``{"schema": ..., ["schemaType"], ["references"]}``,
  404 with ``error_code`` 40403 for an unknown id;
- ``POST /subjects/{subject}/versions``: registers ``{"schema", "schemaType"?,
  "references"?}`` and answers ``{"id": N}`` (the same text gets the same id);
- ``POST /subjects/{subject}``: looks a schema up in a subject (confluent-kafka's
  serializers do, to name a reference's version): the version, or 404 40403;

Schema types: ``AVRO`` and ``JSON`` texts must be JSON; ``PROTOBUF`` texts are kept
as given (confluent-kafka's ``ProtobufSerializer`` registers the base64
``FileDescriptorProto``) and served as they are, also for ``?format=serialized``
(query strings are ignored): a real registry turns ``.proto`` text into that form.
- ``GET  /subjects``, ``GET /subjects/{subject}/versions`` and
  ``GET /subjects/{subject}/versions/{version|latest}``.

Basic auth is required when the registry is started with ``auth=(user, password)``
(401 with ``error_code`` 40101 otherwise, as Confluent's answers), and it serves
HTTPS when given a server ``ssl.SSLContext`` (which may require a client certificate).

Failures can be switched on for the transient path: :meth:`fail_with` answers every
request with a status (e.g. 503), ``delay_seconds`` slows every answer (timeouts),
and :meth:`stop` closes the socket (connection refused). Every request is logged in
:attr:`requests` so tests can check what a cache saved.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass
class _Version:
    subject: str
    version: int
    schema_id: int


@dataclass
class RegistryState:
    """What the server holds; guarded by :attr:`lock`."""

    schemas: dict[int, dict[str, Any]] = field(default_factory=dict)
    ids_by_text: dict[tuple[str, str, str], int] = field(default_factory=dict)
    subjects: dict[str, list[_Version]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    failure_status: int | None = None
    delay_seconds: float = 0.0
    authorization: str | None = None  # the Authorization header required, if any
    unauthorized: int = 0  # requests refused for missing or wrong credentials
    lock: threading.Lock = field(default_factory=threading.Lock)


class TestSchemaRegistry:
    """The server; use :func:`running_schema_registry` to start and stop it."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, *, auth: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.state = RegistryState()
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.state.authorization = f"Basic {token}"
        self._tls = tls
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def unauthorized(self) -> int:
        with self.state.lock:
            return self.state.unauthorized

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self.state.lock:
            return list(self.state.requests)

    def start(self) -> None:
        """Listen (again) on 127.0.0.1, on the same port after a :meth:`stop`."""
        state = self.state
        handler = type("Handler", (_Handler,), {"state": state})
        server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket: clients then get "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def register(
        self,
        subject: str,
        schema: dict[str, Any] | list[Any] | str,
        *,
        schema_type: str = "AVRO",
        references: list[dict[str, Any]] | None = None,
    ) -> int:
        """Register directly (no HTTP); the id, as ``POST .../versions`` would answer."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return _register(self.state, subject, text, schema_type, references or [])

    def fail_with(self, status: int | None) -> None:
        """Answer every request with ``status`` (``None``: behave again)."""
        with self.state.lock:
            self.state.failure_status = status

    def set_delay(self, seconds: float) -> None:
        with self.state.lock:
            self.state.delay_seconds = seconds

    def clear_requests(self) -> None:
        with self.state.lock:
            self.state.requests.clear()


@contextmanager
def running_schema_registry(
    *, auth: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[TestSchemaRegistry]:
    """A started registry, stopped on exit."""
    registry = TestSchemaRegistry(auth=auth, tls=tls)
    registry.start()
    try:
        yield registry
    finally:
        registry.stop()


def confluent_frame(schema_id: int, body: bytes) -> bytes:
    """The Confluent wire format: magic byte 0, the id as 4 big-endian bytes, the body."""
    return b"\x00" + schema_id.to_bytes(4, "big") + body


def _register(
    state: RegistryState,
    subject: str,
    text: str,
    schema_type: str,
    references: list[dict[str, Any]],
) -> int:
    key = (text, schema_type, json.dumps(references, sort_keys=True))
    with state.lock:
        schema_id = state.ids_by_text.get(key)
        if schema_id is None:
            schema_id = len(state.schemas) + 1
            state.ids_by_text[key] = schema_id
            entry: dict[str, Any] = {"schema": text}
            if schema_type != "AVRO":
                entry["schemaType"] = schema_type
            if references:
                entry["references"] = references
            state.schemas[schema_id] = entry
        versions = state.subjects.setdefault(subject, [])
        if not any(v.schema_id == schema_id for v in versions):
            versions.append(_Version(subject, len(versions) + 1, schema_id))
        return schema_id


def _look_up(
    state: RegistryState,
    subject: str,
    text: str,
    schema_type: str,
    references: list[dict[str, Any]],
) -> tuple[int, Any]:
    key = (text, schema_type, json.dumps(references, sort_keys=True))
    with state.lock:
        schema_id = state.ids_by_text.get(key)
        versions = state.subjects.get(subject, [])
        found = next((v for v in versions if v.schema_id == schema_id), None)
        if found is None:
            return 404, {"error_code": 40403, "message": "Schema not found"}
        entry = state.schemas[found.schema_id]
        return 200, {"subject": subject, "version": found.version, "id": found.schema_id, **entry}


class _Handler(BaseHTTPRequestHandler):
    state: RegistryState
    # HTTP/1.0: one request per connection, so that stop() refuses the next request
    # at once instead of a kept-alive connection still being answered.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet in test output
        return

    def do_GET(self) -> None:
        if self._failing():
            return
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
        state = self.state
        with state.lock:
            answer = self._get(parts, state)
        self._send(*answer)

    def do_POST(self) -> None:
        if self._failing():
            return
        parts = [unquote(p) for p in self.path.split("?")[0].strip("/").split("/")]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        registering = len(parts) == 3 and parts[0] == "subjects" and parts[2] == "versions"
        looking_up = len(parts) == 2 and parts[0] == "subjects"
        if not (registering or looking_up):
            self._send(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
            return
        try:
            request = json.loads(body)
            text = request["schema"]
            schema_type = request.get("schemaType", "AVRO")
            if schema_type != "PROTOBUF":
                json.loads(text)
        except (ValueError, KeyError, TypeError):
            self._send(422, {"error_code": 42201, "message": "Invalid schema"})
            return
        references = request.get("references") or []
        if looking_up:
            self._send(*_look_up(self.state, parts[1], text, schema_type, references))
            return
        schema_id = _register(self.state, parts[1], text, schema_type, references)
        self._send(200, {"id": schema_id})

    @staticmethod
    def _get(parts: list[str], state: RegistryState) -> tuple[int, Any]:
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            entry = state.schemas.get(int(parts[2]))
            if entry is None:
                return 404, {"error_code": 40403, "message": "Schema not found"}
            return 200, entry
        if parts == ["subjects"]:
            return 200, sorted(state.subjects)
        if len(parts) >= 3 and parts[0] == "subjects" and parts[2] == "versions":
            versions = state.subjects.get(parts[1])
            if versions is None:
                return 404, {"error_code": 40401, "message": "Subject not found"}
            if len(parts) == 3:
                return 200, [v.version for v in versions]
            wanted = versions[-1] if parts[3] == "latest" else None
            if wanted is None and parts[3].isdigit():
                wanted = next((v for v in versions if v.version == int(parts[3])), None)
            if len(parts) == 4 and wanted is not None:
                entry = state.schemas[wanted.schema_id]
                return 200, {
                    "subject": wanted.subject,
                    "version": wanted.version,
                    "id": wanted.schema_id,
                    **entry,
                }
            return 404, {"error_code": 40402, "message": "Version not found"}
        return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}

    def _failing(self) -> bool:
        state = self.state
        with state.lock:
            state.requests.append((self.command, self.path))
            status = state.failure_status
            delay = state.delay_seconds
            refused = state.authorization not in (None, self.headers.get("Authorization"))
            state.unauthorized += refused
        if refused:
            self._send(401, {"error_code": 40101, "message": "Unauthorized"})
            return True
        if delay:
            threading.Event().wait(delay)
        if status is None:
            return False
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._send(status, {"error_code": status * 100, "message": "failure injected by the test"})
        return True

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
