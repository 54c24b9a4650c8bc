"""The Schema Registry client: one deadline per request, and a cap on what it reads.

A registry that trickles, stalls or floods must not hold the consumer thread:
each variant ends within a bound as SchemaRegistryUnavailable (retried, the
record kept), never as a dead letter for the record.
"""

from __future__ import annotations

import ssl
import threading
import time

import httpx
import pytest

from bridge.codecs import SchemaRegistryClient
from bridge.codecs.registry import MAX_ANSWER_BYTES
from bridge.errors import DecodeError, SchemaRegistryUnavailable
from tests.support.hostile_http import HostileServer, Misbehaviour, hostile_server

DEADLINE_S = 0.5
BOUND_S = 10.0  # the deadline plus room for a loaded machine; the server would hold for hours
# A registry answer holding a real (tiny) record schema; padding follows it.
ANSWER = b'{"schema": "{\\"type\\": \\"record\\", \\"name\\": \\"R\\", \\"fields\\": []}"}'
STALLS = [Misbehaviour.TRICKLE_BODY, Misbehaviour.NO_HEADERS, Misbehaviour.TRICKLE_HEADERS]


def _resolve(
    server: HostileServer, max_answer_bytes: int = MAX_ANSWER_BYTES
) -> SchemaRegistryUnavailable:
    client = SchemaRegistryClient(server.url, timeout=DEADLINE_S, max_answer_bytes=max_answer_bytes)
    with client, pytest.raises(SchemaRegistryUnavailable) as raised:
        client.schema(7)
    return raised.value


@pytest.mark.parametrize("misbehaviour", STALLS)
def test_a_stalled_registry_times_out_within_the_deadline(misbehaviour: Misbehaviour) -> None:
    with hostile_server(misbehaviour) as server:
        started = time.monotonic()
        error = _resolve(server)
        assert time.monotonic() - started < BOUND_S
    assert "timed out resolving schema id 7" in str(error)
    assert server.url not in str(error)


@pytest.mark.parametrize(("status", "expected"), [(200, "answered more than"), (500, "HTTP 500")])
def test_a_huge_registry_answer_is_cut_and_unavailable(status: int, expected: str) -> None:
    with hostile_server(Misbehaviour.HUGE_BODY, status=status, body_head=ANSWER) as server:
        error = _resolve(server)
        assert server.bytes_sent < server.body_size // 2  # the rest was never read
    assert expected in str(error)


def test_a_huge_404_is_still_an_unknown_id() -> None:
    """A 404 means "no such id" whatever its size: the body is not needed to say so."""
    with hostile_server(Misbehaviour.HUGE_BODY, status=404) as server:
        with (
            SchemaRegistryClient(server.url, timeout=DEADLINE_S) as client,
            pytest.raises(DecodeError, match="has no schema id 7"),
        ):
            client.schema(7)
        assert server.bytes_sent < server.body_size // 2


def test_the_cap_holds_a_real_schema_and_is_configurable() -> None:
    assert MAX_ANSWER_BYTES == 8 * 1024 * 1024
    with hostile_server(Misbehaviour.HUGE_BODY, body_size=4096, body_head=ANSWER) as server:
        with SchemaRegistryClient(server.url, timeout=DEADLINE_S) as client:
            assert client.schema(7) is not None  # 4 KiB with padding: under the cap
        error = _resolve(server, max_answer_bytes=1024)
    assert "answered more than 1024 bytes" in str(error)


def test_the_client_is_usable_from_several_threads_and_closes_its_thread() -> None:
    before = threading.active_count()
    with hostile_server(Misbehaviour.HUGE_BODY, body_size=512, body_head=ANSWER) as server:
        client = SchemaRegistryClient(server.url, timeout=DEADLINE_S)
        results: list[object] = []
        threads = [
            threading.Thread(target=lambda n=n: results.append(client.schema(n))) for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(BOUND_S)
        client.close()
        client.close()  # idempotent
    assert len(results) == 4
    assert threading.active_count() <= before


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert certificate required"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(113, "No route to host"),
    ],
)
def test_an_os_error_below_httpx_is_unavailable(error: OSError) -> None:
    """httpcore's async TLS stream can raise a bare ssl.SSLError: still an outage, not a crash."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://registry")
    with (
        SchemaRegistryClient("http://registry", http_client=client) as registry,
        pytest.raises(SchemaRegistryUnavailable, match="unreachable resolving schema id 7"),
    ):
        registry.schema(7)
