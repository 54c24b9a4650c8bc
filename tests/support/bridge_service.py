"""Run ``vibes-bridge run`` and ``replay`` as real subprocesses against a broker and the simulator.

The service tests drive the shipped command, not an in-process imitation: a
crash test must kill a real process. Everything here waits on conditions with
bounds; nothing sleeps for a fixed time to synchronise. Producing and reading
records is ``tests.support.kafka``; a whole per-test world is ``tests.support.service``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.paths import ROOT
from tests.support.waiting import wait_until

RUN_COMMAND = (sys.executable, "-m", "bridge", "run")
REPLAY_COMMAND = (sys.executable, "-m", "bridge", "replay")
REPLAY_TIMEOUT_S = 120.0
RUN_TO_EXIT_TIMEOUT_S = 120.0
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass
class BridgeProcess:
    """One running bridge: its process, JSON log file and management address."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    management: str

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                lines.append({"message": raw, "level": "RAW"})
        return lines

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.management + path, timeout=5.0)

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include ``labels`` (0 when absent)."""
        return metric_sum(self.get("/metrics").text, name, **labels)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    @property
    def running(self) -> bool:
        return self.proc.poll() is None


def metric_sum(exposition: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples in a Prometheus text exposition whose labels include
    ``labels`` (0 when absent); one scrape can then be read several times consistently."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric_name, _, label_text = series.partition("{")
        if metric_name != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            total += float(value)
    return total


def start_bridge(
    config: Path, log_path: Path, env: Mapping[str, str] | None = None
) -> BridgeProcess:
    """Start ``vibes-bridge run -c CONFIG`` and wait until it says it is running."""
    start_offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*RUN_COMMAND, "-c", str(config)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    process = BridgeProcess(proc, log_path, "")

    def listening() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"bridge exited with {proc.returncode}:\n{log_path.read_text()}")
        text = log_path.read_bytes()[start_offset:].decode(errors="replace")
        for raw in text.splitlines():
            # Logged once everything listens (management port, callback receiver) and
            # the dead-letter topic was checked: the service is up, if not yet assigned.
            if "vibes-bridge running" in raw:
                process.management = json.loads(raw)["management"].replace("0.0.0.0", "127.0.0.1")
                return True
        return False

    try:
        wait_until(listening, START_TIMEOUT_S, "the bridge to say it is running")
    except BaseException:  # never leak a running bridge past a failed start
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        raise
    return process


def run_to_exit(config: Path) -> subprocess.CompletedProcess[str]:
    """``vibes-bridge run -c CONFIG`` expected to end by itself (a refused start); bounded."""
    return subprocess.run(
        [*RUN_COMMAND, "-c", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TO_EXIT_TIMEOUT_S,
        check=False,
    )


def run_replay(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vibes-bridge replay -c CONFIG ARGS`` to its end (bounded); stdout and stderr as text."""
    return subprocess.run(
        [*REPLAY_COMMAND, "-c", str(config), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=REPLAY_TIMEOUT_S,
        check=False,
    )


def start_replay(config: Path, log_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start a replay in the background (to be killed half-way); output goes to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [*REPLAY_COMMAND, "-c", str(config), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def default_event_id(rule: str, topic: str, partition: int, offset: int) -> str:
    """The event id a rule without ``event_id`` gives (spec section 1: SHA-1 of the coordinates)."""
    return hashlib.sha1(f"{rule}|{topic}|{partition}|{offset}".encode()).hexdigest()


def service_config(
    path: Path,
    *,
    bootstrap: str,
    sim_url: str,
    group: str,
    dead_letter_topic: str,
    sources: Iterable[str],
    rules: str,
    vibes: str = "",
    delivery: str = "",
    kafka_config: str = "",
    fleet: str = "",
) -> Path:
    """A configuration file for one test: its own group, topics and dead-letter topic."""
    credentials = textwrap.dedent(vibes) or "username: demo\npassword: demo\n"
    fleet_lines = "fleet:\n" + textwrap.indent(textwrap.dedent(fleet), "  ") if fleet else ""
    source_lines = "".join(f"  - topic: {topic}\n    format: json\n" for topic in sources)
    text = (
        "version: 1\n"
        "kafka:\n"
        f"  bootstrap_servers: {bootstrap}\n"
        f"  group_id: {group}\n"
        "  config:\n"
        "    session.timeout.ms: 10000\n"
        "    heartbeat.interval.ms: 1000\n"
        f"{textwrap.indent(textwrap.dedent(kafka_config), '    ')}"
        "vibes:\n"
        f"  base_url: {sim_url}\n"
        "  company_key: demo\n"
        f"{textwrap.indent(credentials, '  ')}"
        "  timeout_seconds: 2\n"
        "delivery:\n"
        "  shutdown_timeout_seconds: 10\n"
        f"{textwrap.indent(textwrap.dedent(delivery), '  ')}"
        "management:\n"
        "  host: 127.0.0.1\n"
        "  port: 0\n"
        "dead_letter:\n"
        f"  topic: {dead_letter_topic}\n"
        f"{fleet_lines}"
        "sources:\n"
        f"{source_lines}"
        f"{textwrap.dedent(rules)}"
    )
    path.write_text(text)
    return path
