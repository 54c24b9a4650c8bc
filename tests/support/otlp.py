"""A test OTLP/HTTP trace receiver: the real protocol, decoded with ``opentelemetry-proto``.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` (protobuf, gzip or not)
is answered as a collector answers it, and every span is kept as a plain
:class:`ReceivedSpan`. It runs on a thread of its own on 127.0.0.1, so a bridge
subprocess exports to it over a real socket.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.support.paths import ROOT

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedSpan:
    """One exported span, ids as lowercase hex (the parent empty for a root span)."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    service_name: str
    status_code: int
    links: list[tuple[str, str]] = field(default_factory=list)

    def all_values(self) -> list[str]:
        """Every attribute value, event name and event attribute value, as text."""
        values = [str(value) for value in self.attributes.values()]
        for name, attributes in self.events:
            values.append(name)
            values.extend(str(value) for value in attributes.values())
        return [self.name, *values]


class OtlpReceiver:
    """Serves until :meth:`close`; ``endpoint`` is the base URL (OTEL_EXPORTER_OTLP_ENDPOINT)."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != TRACES_PATH:
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._take(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, request: ExportTraceServiceRequest) -> None:
        received: list[ReceivedSpan] = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            service = str(resource.get("service.name", ""))
            for scope_spans in resource_spans.scope_spans:
                received.extend(_span(span, service) for span in scope_spans.spans)
        with self._lock:
            self.requests += 1
            self._spans.extend(received)


def _span(span: Span, service: str) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=span.kind,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        events=[(event.name, _attributes(event.attributes)) for event in span.events],
        service_name=service,
        status_code=span.status.code,
        links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
    )


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return None if kind is None else getattr(value, kind)


@contextmanager
def receiver_process() -> Iterator[str]:
    """An :class:`OtlpReceiver` in a process of its own (so a benchmark's CPU time leaves
    its decoding out); yields its endpoint, stops it at the end."""
    receiver = subprocess.Popen(
        [sys.executable, "-c", _RECEIVER_MAIN],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert receiver.stdout is not None
        yield receiver.stdout.readline().strip()
    finally:
        if receiver.stdin is not None:
            receiver.stdin.close()  # the receiver's cue to leave
        try:
            receiver.wait(10)
        except subprocess.TimeoutExpired:
            receiver.kill()
            receiver.wait()


_RECEIVER_MAIN = """
import sys
from tests.support.otlp import OtlpReceiver
receiver = OtlpReceiver()
print(receiver.endpoint, flush=True)
sys.stdin.read()
"""
