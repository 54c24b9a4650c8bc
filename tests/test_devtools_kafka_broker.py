"""The ``devtools.kafka_broker`` package keeps the contract of the module it replaced.

Its importers (tests, bench, scripts) use the package root; its paths are computed
from ``__file__`` one level deeper than before; and its CLI must never signal a
process or delete a directory that is not the broker it recorded. None of these
tests starts a broker: records point at ordinary processes and temporary dirs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import devtools.kafka_broker as kafka_broker_package
from devtools.kafka_broker import (
    CACHE_DIR,
    ENV_BOOTSTRAP,
    ENV_STATE_FILE,
    POM_FILE,
    REPO_ROOT,
    STATE_FILE,
)

ROOT = Path(__file__).resolve().parents[1]

#: Names that importers take from the package root today (tests, bench, scripts and
#: bench/soak.py): each must stay importable from there.
IMPORTED_NAMES = [
    "BrokerHandle",
    "ENV_BOOTSTRAP",
    "ENV_STATE_FILE",
    "KafkaBrokerError",
    "REPO_ROOT",
    "broker_running",
    "kafka_broker",
    "pause_local_broker",
    "resume_local_broker",
    "start_broker",
    "start_local_broker",
    "stop_broker",
    "stop_local_broker",
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (REPO_ROOT, ROOT),
        (CACHE_DIR, ROOT / ".cache" / "kafka"),
        (STATE_FILE, ROOT / ".cache" / "kafka" / "local.json"),
        (POM_FILE, ROOT / "tools" / "kafka" / "pom.xml"),
    ],
    ids=["repo-root", "cache-dir", "state-file", "pom"],
)
def test_paths_are_the_checkouts(path: Path, expected: Path) -> None:
    """Paths derived from ``__file__`` still name this checkout, not ``devtools/``."""
    assert path == expected


def test_pom_file_exists() -> None:
    assert POM_FILE.is_file()


@pytest.mark.parametrize("name", IMPORTED_NAMES)
def test_public_name_importable_from_package_root(name: str) -> None:
    assert name in kafka_broker_package.__all__
    assert getattr(kafka_broker_package, name) is not None


def test_every_exported_name_resolves() -> None:
    missing = [n for n in kafka_broker_package.__all__ if not hasattr(kafka_broker_package, n)]
    assert missing == []


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process, standing in for one that reused a broker's pid."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _cli(command: str, state_file: Path) -> subprocess.CompletedProcess[str]:
    """``python -m devtools.kafka_broker COMMAND`` from another directory."""
    env = {k: v for k, v in os.environ.items() if k != ENV_BOOTSTRAP}
    env[ENV_STATE_FILE] = str(state_file)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "devtools.kafka_broker", command],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _record(state_file: Path, **fields: Any) -> None:
    state = {"kind": "local", "bootstrap": "127.0.0.1:9", "version": "4.1.1"} | fields
    state_file.write_text(json.dumps(state))


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _cli("--help", tmp_path / "local.json")
    assert result.returncode == 0, result.stderr
    assert "{start,stop,status}" in result.stdout


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"pid": "BYSTANDER", "run_dir": "RUN_DIR"}, "local"),
        ({"pid": "BYSTANDER", "run_dir": None}, "local"),
        ({"pid": None, "run_dir": "RUN_DIR"}, "local"),
        ({"kind": "docker", "container_id": None}, "docker"),
    ],
    ids=["reused-pid", "reused-pid-no-run-dir", "no-pid", "docker-without-container"],
)
def test_status_reports_a_gone_broker(
    tmp_path: Path,
    bystander: subprocess.Popen[bytes],
    fields: dict[str, Any],
    kind: str,
) -> None:
    """A record whose pid is now another process is not a running broker."""
    state_file = tmp_path / "local.json"
    run_dir = tmp_path / "run-1-deadbeef"
    run_dir.mkdir()
    values = {"BYSTANDER": bystander.pid, "RUN_DIR": str(run_dir)}
    _record(
        state_file, **{k: values.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    )

    result = _cli("status", state_file)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"kafka: not running (recorded {kind} broker at 127.0.0.1:9 is gone)"
    )


@pytest.mark.kafka
@pytest.mark.parametrize("with_run_dir", [True, False], ids=["run-dir", "no-run-dir"])
def test_status_does_not_take_a_reused_pid_for_the_broker(
    tmp_path: Path,
    bystander: subprocess.Popen[bytes],
    kafka_bootstrap: str,
    with_run_dir: bool,
) -> None:
    """An answering address is not enough: the recorded pid must be a Kafka JVM.

    Only ``status`` is run against the session's broker; it never signals anything.
    """
    state_file = tmp_path / "local.json"
    run_dir = tmp_path / "run-1-deadbeef"
    run_dir.mkdir()
    _record(
        state_file,
        bootstrap=kafka_bootstrap,
        pid=bystander.pid,
        run_dir=str(run_dir) if with_run_dir else None,
    )

    result = _cli("status", state_file)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.strip() == (
        f"kafka: not running (recorded local broker at {kafka_bootstrap} is gone)"
    )


@pytest.mark.parametrize("with_run_dir", [True, False], ids=["run-dir", "no-run-dir"])
def test_stop_spares_a_process_that_reused_the_pid(
    tmp_path: Path, bystander: subprocess.Popen[bytes], with_run_dir: bool
) -> None:
    """``stop`` forgets the record but neither signals the bystander nor deletes its dir."""
    state_file = tmp_path / "local.json"
    run_dir = tmp_path / "run-1-deadbeef"
    (run_dir / "data").mkdir(parents=True)
    _record(state_file, pid=bystander.pid, run_dir=str(run_dir) if with_run_dir else None)

    result = _cli("stop", state_file)

    assert result.returncode == 0, result.stderr
    assert "stopping local broker at 127.0.0.1:9" in result.stderr
    assert bystander.poll() is None, "stop signalled a process that is not its broker"
    assert (run_dir / "data").is_dir()
    assert not state_file.exists()


def _local(**fields: Any) -> str:
    return json.dumps({"kind": "local", "bootstrap": "127.0.0.1:9", "run_dir": None} | fields)


UNREADABLE_STATES = [
    pytest.param("{not json", id="not-json"),
    pytest.param("{}", id="no-kind"),
    pytest.param('{"kind": "martian", "bootstrap": "x:1"}', id="unknown-kind"),
    pytest.param("[]", id="list"),
    pytest.param('"local"', id="string"),
    pytest.param("null", id="null"),
    pytest.param(_local(pid="123"), id="pid-string"),
    pytest.param(_local(pid=-1), id="pid-minus-one"),
    pytest.param(_local(pid=0), id="pid-zero"),
    pytest.param(_local(pid=True), id="pid-true"),
    pytest.param(_local(pid=12.5), id="pid-float"),
    pytest.param(_local(pid=None, controller_port="x"), id="controller-port-string"),
]


@pytest.mark.parametrize(
    ("command", "returncode", "says"),
    [
        ("status", 1, "kafka: not running"),
        ("stop", 0, "no local broker recorded; nothing to stop"),
    ],
)
@pytest.mark.parametrize("content", UNREADABLE_STATES)
def test_cli_ignores_an_unreadable_state_file(
    tmp_path: Path, content: str, command: str, returncode: int, says: str
) -> None:
    """A damaged record is one line on stderr, never a traceback, and ``stop`` signals
    nothing (a pid of -1 or 0 given to kill() would reach every process or the group)."""
    state_file = tmp_path / "local.json"
    state_file.write_text(content)

    result = _cli(command, state_file)

    assert result.returncode == returncode, result.stderr
    assert says in result.stdout + result.stderr
    assert "ignoring unreadable state file" in result.stderr
    assert "Traceback" not in result.stderr
