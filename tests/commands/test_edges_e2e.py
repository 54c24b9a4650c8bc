"""One line, never a traceback: paths that are not files, ports in use, a BOM on map's input.

Run as real subprocesses, as an operator or a CI job runs them; every run is bounded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.bridge_service import start_bridge
from tests.support.configs import HEADER
from tests.support.waiting import wait_until

REPO = Path(__file__).parents[2]
BOUND_S = 60
RULES = """\
rules:
  - name: shipped
    topic: shop.shipments
    event_type: order_shipped
    recipient:
      external_person_id: customer.id
"""
TOKEN = "0123456789abcdef0123"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=BOUND_S,  # a command that blocks on its input fails here instead of hanging
        check=False,
        cwd=REPO,
    )


def _fifo(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "bridge.yaml"
    os.mkfifo(path)
    return path, "a named pipe"


def _dev_zero(_tmp_path: Path) -> tuple[Path, str]:
    return Path("/dev/zero"), "a character device"


def _directory(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path, "a directory"


COMMANDS: list[tuple[str, ...]] = [
    ("validate",),
    ("map", "--topic", "shop.shipments"),
    ("test", "CASES"),
    ("run",),
]


@pytest.mark.parametrize("make", [_fifo, _dev_zero, _directory])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_configuration_that_is_not_a_file_is_one_line_and_exit_2(
    tmp_path: Path, make: Callable[[Path], tuple[Path, str]], command: tuple[str, ...]
) -> None:
    path, kind = make(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases: []\n")
    args = [str(cases) if arg == "CASES" else arg for arg in command]
    result = run(args[0], "-c", str(path), *args[1:])
    assert result.returncode == 2
    output = (result.stdout + result.stderr).decode()
    assert "Traceback" not in output
    line = f"{path}: cannot read the file: not a regular file ({kind})"
    assert [text for text in output.splitlines() if "not a regular file" in text] == [line]


def test_map_ignores_a_byte_order_mark_as_the_configuration_loader_does(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_bytes(b"\xef\xbb\xbf" + (HEADER + RULES).encode())  # the loader accepts it
    records = b'{"customer": {"id": "c1"}}\n{"customer": {"id": "c2"}}\n'
    fixed = ("--topic", "shop.shipments", "--timestamp", "1764000000000")  # not "now"
    plain = run("map", "-c", str(config), *fixed, stdin=records)
    marked = run("map", "-c", str(config), *fixed, stdin=b"\xef\xbb\xbf" + records)
    assert plain.returncode == 0, plain.stderr
    assert (marked.returncode, marked.stdout, marked.stderr) == (0, plain.stdout, b"")
    # Only at the start of the input: a mark inside a later line is not JSON there.
    inner = run(
        "map",
        "-c",
        str(config),
        "--topic",
        "shop.shipments",
        stdin=records + b"\xef\xbb\xbf" + records,
    )
    assert inner.returncode == 1
    assert inner.stderr.decode().startswith("line 3: decode_error")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def _service_file(tmp_path: Path, management: int, callbacks: int | None) -> Path:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    text = HEADER.replace(
        "version: 1\n",
        f"version: 1\nkafka: {{bootstrap_servers: '{bootstrap}'}}\n"
        f"management: {{host: 127.0.0.1, port: {management}}}\nfleet: {{enabled: false}}\n",
    )
    if callbacks is not None:
        text += f"callbacks: {{host: 127.0.0.1, port: {callbacks}, token: {TOKEN}}}\n"
    path = tmp_path / "bridge.yaml"
    path.write_text(text + RULES)
    return path


@pytest.mark.parametrize("which", ["management.port", "callbacks.port"])
def test_a_port_in_use_is_one_line_naming_the_key_and_exit_1(
    tmp_path: Path, taken_port: int, which: str
) -> None:
    if which == "management.port":
        config = _service_file(tmp_path, taken_port, None)
    else:
        config = _service_file(tmp_path, 0, taken_port)
    result = run("run", "-c", str(config))
    assert result.returncode == 1
    assert "Traceback" not in (result.stdout + result.stderr).decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    # librdkafka's own lines (the broker may be unreachable here) are not the bridge's.
    errors = [
        e for e in lines if e["level"] == "ERROR" and not e["logger"].startswith("bridge.kafka")
    ]
    assert [e["message"] for e in errors] == [
        f"cannot listen on {which} (127.0.0.1:{taken_port}): address already in use; "
        "the bridge did not start"
    ]
    assert errors[0]["setting"] == which


def test_validate_refuses_callbacks_on_the_management_port_at_its_line(tmp_path: Path) -> None:
    config = _service_file(tmp_path, 9464, 9464)
    result = run("validate", "-c", str(config))
    assert result.returncode == 2
    line = HEADER.count("\n") + 4  # callbacks: after kafka, management and fleet
    problems = [line for line in result.stdout.decode().splitlines() if ": warning:" not in line]
    assert problems == [
        f"{config}:{line}: callbacks.port: 9464 is also management.port; "
        "the two listeners need different ports"
    ]


def test_an_unreachable_broker_is_logged_once_per_kind_not_per_attempt(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on: every connect is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = _service_file(tmp_path, 0, None)
    config.write_text(
        config.read_text().replace(
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"), f"127.0.0.1:{closed}"
        )
    )
    log_path = tmp_path / "bridge.log"
    bridge = start_bridge(config, log_path)  # up after the dead-letter topic check gave up
    try:
        wait_until(
            lambda: len(_client_lines(log_path)) >= 2, 30, "the first refused connects logged"
        )
        # The window the failures repeat in (librdkafka retries every 100 ms to 1 s):
        # not a synchronisation, what is measured over it.
        with pytest.raises(subprocess.TimeoutExpired):
            bridge.proc.wait(timeout=3)
    finally:
        assert bridge.stop() == 0
    lines = _client_lines(log_path)
    # About 20 a second before; now the first of each kind (client type x failure).
    assert 2 <= len(lines) <= 8, [line["message"] for line in lines]
    assert not (log_path.read_text().count("%3|"))  # nothing bypasses the JSON log


def _client_lines(log_path: Path) -> list[dict[str, str]]:
    lines = []
    for raw in log_path.read_text().splitlines():
        if raw.startswith("{"):
            line = json.loads(raw)
            if line["logger"] == "bridge.kafka.librdkafka":
                lines.append(line)
    return lines
