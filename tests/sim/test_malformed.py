"""Requests too broken to reach a route, over raw sockets: enveloped, counted, never echoed.

The simulator runs with a password found nowhere else, so any echo of the
request's header bytes (the Basic credentials) shows up in the raw answer or
in the log, which the module fixture reads after stopping the simulator.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.support.simulator import COUNTERS, SimProcess, start_sim, stats
from tests.support.waiting import wait_until

USERNAME = "sim-user"
PASSWORD = "Pw-9f3c-unique"
TOKEN = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, TOKEN, TOKEN[:16])
EVENTS_LINE = b"POST /companies/demo/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
AUTH = f"Authorization: Basic {TOKEN}\r\n".encode()
JSON_TYPE = b"Content-Type: application/json\r\n"
READ_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def secret_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """A simulator whose credentials are distinctive; its log is checked at the end."""
    log_path: Path = tmp_path_factory.mktemp("sim") / "sim.log"
    sim = start_sim(["--username", USERNAME, "--password", PASSWORD], log_path)
    yield sim
    assert sim.stop() == 0, sim.log()
    log = sim.log()
    assert "refused a malformed request" in log  # the log was written, and is checked
    for secret in SECRETS:
        assert secret not in log, "the simulator logged the credentials"
    assert "Traceback" not in log


@pytest.fixture
def sim(secret_sim: SimProcess) -> SimProcess:
    httpx.post(f"{secret_sim.url}/_sim/reset", timeout=10).raise_for_status()
    return secret_sim


def address(sim: SimProcess) -> tuple[str, int]:
    parts = urlsplit(sim.url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


def read_answer(conn: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    conn.settimeout(READ_TIMEOUT_S)
    answer = b""
    while chunk := conn.recv(65536):
        answer += chunk
    return answer


def exchange(sim: SimProcess, raw: bytes) -> bytes:
    with socket.create_connection(address(sim), timeout=READ_TIMEOUT_S) as conn:
        conn.sendall(raw)
        return read_answer(conn)


def assert_counted_once_as_malformed(sim: SimProcess) -> None:
    counts = stats(sim)
    assert counts["malformed"] == 1
    assert counts["received"] == 1
    assert counts["received"] == sum(counts[name] for name in COUNTERS)


def assert_enveloped_400(answer: bytes) -> str:
    """The raw answer is a 400 with the JSON envelope; returns its one message."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    assert status_line.split(b" ")[1] == b"400", answer
    headers = dict(line.split(b": ", 1) for line in header_lines)
    assert headers[b"Content-Type"] == b"application/json"
    document = orjson.loads(body)
    assert len(document["errors"]) == 1
    error = document["errors"][0]
    assert error["code"] == 400
    assert isinstance(error["message"], str)
    return str(error["message"])


def assert_no_secret(answer: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in answer, "the answer echoed the credentials"


MALFORMED = {
    "control-char-in-authorization": EVENTS_LINE
    + f"Authorization: Basic {TOKEN}\x01\r\n".encode()
    + b"\r\n",
    "authorization-without-colon": EVENTS_LINE + f"Authorization Basic {TOKEN}\r\n\r\n".encode(),
    "credentials-in-header-name": EVENTS_LINE + f"X-{TOKEN}(): 1\r\n".encode() + AUTH + b"\r\n",
    "not-http-at-all": b"\x00\x01 NOT HTTP\r\n" + AUTH + b"\r\n",
    "bad-method": b"P\x01ST /companies/demo/events HTTP/1.1\r\n" + AUTH + b"\r\n",
    "bad-version": b"POST /companies/demo/events HTTP/9.Z\r\n" + AUTH + b"\r\n",
    "letters-in-content-length": EVENTS_LINE + AUTH + b"Content-Length: abc\r\n\r\n",
    "content-length-and-chunked": EVENTS_LINE
    + AUTH
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    "header-too-long": EVENTS_LINE + AUTH + b"X-Long: " + TOKEN.encode() * 400 + b"\r\n\r\n",
    "bad-chunk-size": EVENTS_LINE
    + AUTH
    + JSON_TYPE
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    + TOKEN.encode()
    + b"\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_request_gets_the_envelope_is_counted_and_never_echoed(
    sim: SimProcess, raw: bytes
) -> None:
    answer = exchange(sim, raw)
    message = assert_enveloped_400(answer)
    assert "valid" in message or "too long" in message
    assert_no_secret(answer)
    assert_counted_once_as_malformed(sim)
    assert httpx.get(f"{sim.url}/_sim/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("sent", [0, 10, 99], ids=["no-body", "some-body", "all-but-one"])
def test_body_cut_short_by_the_client_counts_as_malformed(sim: SimProcess, sent: int) -> None:
    head = EVENTS_LINE + AUTH + JSON_TYPE + b"Content-Length: 100\r\n\r\n"
    with socket.create_connection(address(sim), timeout=READ_TIMEOUT_S) as conn:
        conn.sendall(head + b"x" * sent)
        wait_until(lambda: stats(sim)["received"] == 1, what="the request to reach the handler")
    wait_until(lambda: stats(sim)["malformed"] == 1, what="the cut body to be counted")
    assert_counted_once_as_malformed(sim)


def test_well_formed_requests_still_work_after_malformed_ones(sim: SimProcess) -> None:
    for raw in MALFORMED.values():
        exchange(sim, raw)
    with httpx.Client(base_url=sim.url, auth=(USERNAME, PASSWORD), timeout=10) as client:
        body = {"event_type": "t", "event_data": {"external_person_id": "p"}, "event_id": "ok"}
        response = client.post("/companies/demo/events", json=body)
    assert response.status_code == 200
    counts = stats(sim)
    assert counts["malformed"] == len(MALFORMED)
    assert counts["sent"] == 1
    assert counts["received"] == sum(counts[name] for name in COUNTERS)


def test_malformed_request_after_a_good_one_on_the_same_connection(sim: SimProcess) -> None:
    """Keep-alive: the good request is answered 200, the broken one after it 400."""
    body = b'{"event_type":"t","event_data":{"external_person_id":"p"}}'
    length = f"Content-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(address(sim), timeout=READ_TIMEOUT_S) as conn:
        conn.sendall(EVENTS_LINE + AUTH + JSON_TYPE + length + body)
        first = b""
        while b'"}' not in first:  # the 200 answer ends with the event_id's JSON
            chunk = conn.recv(65536)
            assert chunk, first
            first += chunk
        conn.sendall(b"\x00garbage " + AUTH + b"\r\n")
        second = read_answer(conn)
    assert first.startswith(b"HTTP/1.1 200"), first
    assert_enveloped_400(second)
    assert_no_secret(second)
    counts = stats(sim)
    assert (counts["sent"], counts["malformed"], counts["received"]) == (1, 1, 2)
