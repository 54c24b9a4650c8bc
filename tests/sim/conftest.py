"""Fixtures that run the simulator as a real subprocess and talk to it over HTTP.

The command under test is the shipped one (``python -m bridge sim``); the port
is whatever the kernel picked, read from the ``listening on`` line. Every wait
is a bounded poll, never a fixed sleep.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM_COMMAND = (sys.executable, "-m", "bridge", "sim")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
AUTH = ("demo", "demo")
DEFAULT_FAULTS: dict[str, float] = {
    "latency_ms": 0,
    "latency_jitter_ms": 0,
    "rate_limit": 0,
    "rate_limit_burst": 0,
    "error_rate": 0,
    "error_500_rate": 0,
    "timeout_rate": 0,
    "timeout_hold_s": 30,
    "drop_rate": 0,
}


def event(event_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid Vibes body; ``overrides`` replace top-level fields."""
    body: dict[str, Any] = {
        "event_type": "order_shipped",
        "event_data": {"external_person_id": "person-1", "order_id": "o-1"},
        "debug_data": {"source": "tests"},
    }
    if event_id is not None:
        body["event_id"] = event_id
    body.update(overrides)
    return body


@dataclass
class SimProcess:
    """One running simulator: its URL, process and stderr log."""

    proc: subprocess.Popen[str]
    url: str
    log_path: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx client on this simulator with the default credentials."""
        options: dict[str, Any] = {"base_url": self.url, "auth": AUTH, "timeout": 10.0}
        options.update(kwargs)
        client = httpx.Client(**options)
        self.clients.append(client)
        return client

    def post_event(
        self, client: httpx.Client, body: Any, company_key: str = "demo"
    ) -> httpx.Response:
        return client.post(f"/companies/{company_key}/events", json=body)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and wait (bounded) for the exit status."""
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_sim(
    args: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> SimProcess:
    """Start ``vibes-bridge sim --port 0 ARGS`` and wait for its ``listening on`` line."""
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*SIM_COMMAND, "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **(env or {})},
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            line = proc.stdout.readline()
            break
    if not line.startswith("listening on http://"):
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"simulator did not start: {line!r}\n{log_path.read_text(errors='replace')}"
        )
    return SimProcess(proc, line.removeprefix("listening on ").strip(), log_path)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    """Start simulators with test-specific options; all are stopped afterwards."""
    started: list[SimProcess] = []

    def _start(*args: str, env: Mapping[str, str] | None = None) -> SimProcess:
        sim = start_sim(args, tmp_path / f"sim-{len(started)}.log", env)
        started.append(sim)
        return sim

    yield _start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator for a whole module, serving two company keys."""
    log_path = tmp_path_factory.mktemp("sim") / "sim.log"
    sim = start_sim(["--company-key", "demo,other", "--seed", "7"], log_path)
    yield sim
    assert sim.stop() == 0, sim.log()
    log = sim.log()
    for secret in ("person-1", "ZGVtbzpkZW1v", "demo:demo", "order_shipped"):
        assert secret not in log, f"the simulator logged {secret!r}"


@pytest.fixture
def sim(shared_sim: SimProcess) -> SimProcess:
    """The shared simulator, back to default knobs with empty events and stats."""
    with httpx.Client(base_url=shared_sim.url, timeout=10.0) as control:
        control.post("/_sim/faults", json=DEFAULT_FAULTS).raise_for_status()
        control.post("/_sim/reset").raise_for_status()
    return shared_sim


@pytest.fixture
def client(sim: SimProcess) -> httpx.Client:
    """An authenticated client on the shared simulator."""
    return sim.client()
