"""The Vibes simulator as a real subprocess, and its control API, for every test that needs it.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.paths import ROOT

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

# Every request ends in exactly one of these stats counters, so they sum to ``received``.
COUNTERS = (
    "sent",
    "duplicates",
    "rejected",
    "rate_limited",
    "unauthorized",
    "faults",
    "malformed",
    "internal_errors",
)


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
    # One select on the pipe, not a poll loop: a simulator that dies closes its
    # stdout, which select reports at once (readline then gives "").
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("listening on http://"):
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"simulator did not start: {line!r}\n{log_path.read_text(errors='replace')}"
        )
    return SimProcess(proc, line.removeprefix("listening on ").strip(), log_path)


def assert_envelope(response: httpx.Response, status: int) -> list[dict[str, Any]]:
    """The documented 4xx/5xx shape: ``{"errors": [{"message": str, "code": int}]}``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    errors = response.json()["errors"]
    assert errors
    for error in errors:
        assert set(error) == {"message", "code"}
        assert isinstance(error["message"], str)
        assert error["message"]
        assert isinstance(error["code"], int)
    return list(errors)


def reset(sim: SimProcess) -> SimProcess:
    """A simulator shared by a module, back to default knobs with empty events and stats."""
    with httpx.Client(base_url=sim.url, timeout=10.0) as control:
        control.post("/_sim/faults", json=DEFAULT_FAULTS).raise_for_status()
        control.post("/_sim/reset").raise_for_status()
    return sim


def stats(sim: SimProcess) -> dict[str, int]:
    """The simulator's counters (``/_sim/stats``)."""
    return dict(httpx.get(f"{sim.url}/_sim/stats", timeout=10).json())


def events(sim: SimProcess) -> list[dict[str, Any]]:
    """The events the simulator accepted (``/_sim/events``)."""
    return list(httpx.get(f"{sim.url}/_sim/events", timeout=10).json())


class SimControl:
    """The simulator's inspection and control API (``/_sim``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._client.get("/_sim/stats").json()
        return result

    def events(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._client.get("/_sim/events").json()
        return result

    def faults(self, **knobs: float) -> None:
        self._client.post("/_sim/faults", content=orjson.dumps(knobs)).raise_for_status()

    def fail_events(self, pattern: str, seconds: float | None = None) -> None:
        """Answer 503 to every event whose event_id matches ``pattern`` (``/_sim/failing``)."""
        body: dict[str, object] = {"event_id_pattern": pattern}
        if seconds is not None:
            body["seconds"] = seconds
        self._client.post("/_sim/failing", content=orjson.dumps(body)).raise_for_status()

    def stop_failing(self) -> None:
        self._client.delete("/_sim/failing").raise_for_status()

    def close(self) -> None:
        self._client.close()
