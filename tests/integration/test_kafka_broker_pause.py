"""A local broker's data survives another process's sweep of stale run dirs.

Every broker start sweeps run dirs it judges stale, and sessions share the cache.
Two ways a live broker's data was swept from under it (bench/soak.py's resume then
failed with "no broker log was written"): while paused (bench/soak.py, the
broker-restart tests) its pid file names a dead JVM, so the dir now says which live
process paused it; and a running JVM was not recognised when its command line spelt
the run dir by another path (a worktree's symlinked .cache), so the dir's unique
name is compared. No JVM is needed: the sweep reads files and command lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.kafka_broker import (
    PAUSED_FILE_NAME,
    PID_FILE_NAME,
    BrokerHandle,
    pause_local_broker,
    process,
    resume_local_broker,
)
from tests.support.waiting import wait_until

OLD_S = 3600.0  # older than every age the sweep waits for


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


def _run_dir(cache: Path, *, broker_pid: int) -> Path:
    """A run dir as a broker leaves it, its pid file naming a JVM that is gone, not touched
    for longer than the sweep waits."""
    run_dir = cache / f"run-{broker_pid}-test"
    (run_dir / "data").mkdir(parents=True)
    (run_dir / PID_FILE_NAME).write_text(f"{broker_pid}\n")
    old = time.time() - OLD_S
    os.utime(run_dir, (old, old))
    return run_dir


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(process, "CACHE_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("paused_by", "kept"),
    [
        ("this process", True),  # paused, its owner alive: it will be resumed
        ("a dead process", False),  # paused by a process that died: stale after all
        (None, False),  # not paused, broker dead: stale, as before
        ("garbage", False),  # an unreadable marker protects nothing
    ],
)
def test_sweep_keeps_only_run_dirs_paused_by_a_live_process(
    cache: Path, paused_by: str | None, kept: bool
) -> None:
    owners = {"this process": str(os.getpid()), "a dead process": str(_dead_pid())}
    run_dir = _run_dir(cache, broker_pid=_dead_pid())
    if paused_by is not None:
        (run_dir / PAUSED_FILE_NAME).write_text(owners.get(paused_by, "not a pid"))
        old = time.time() - OLD_S
        os.utime(run_dir, (old, old))
    process.sweep_stale_run_dirs()
    assert run_dir.exists() is kept


def test_pause_marks_the_run_dir_as_paused_by_this_process(cache: Path) -> None:
    run_dir = _run_dir(cache, broker_pid=_dead_pid())
    handle = BrokerHandle(kind="local", bootstrap="127.0.0.1:1", version="4", run_dir=run_dir)
    pause_local_broker(handle)  # no JVM to stop (pid None): only the marker
    assert (run_dir / PAUSED_FILE_NAME).read_text().strip() == str(os.getpid())
    old = time.time() - OLD_S
    os.utime(run_dir, (old, old))
    process.sweep_stale_run_dirs()
    assert run_dir.exists()


@pytest.mark.kafka
@pytest.mark.slow
def test_resume_removes_the_mark(own_broker: BrokerHandle) -> None:
    assert own_broker.run_dir is not None
    pause_local_broker(own_broker)
    assert (own_broker.run_dir / PAUSED_FILE_NAME).exists()
    resume_local_broker(own_broker)
    assert not (own_broker.run_dir / PAUSED_FILE_NAME).exists()


def test_sweep_keeps_a_live_broker_whose_run_dir_is_spelled_another_way(cache: Path) -> None:
    # Worktrees share .cache through a symlink: the JVM's command line names the run dir
    # by one path, a sweep in another worktree finds it by another.
    run_dir = _run_dir(cache, broker_pid=0)
    elsewhere = f"/elsewhere/.cache/kafka/{run_dir.name}/server.properties"
    stand_in = subprocess.Popen(  # blocks on stdin until closed: a JVM's command line
        [sys.executable, "-c", "import sys; sys.stdin.read()", "kafka.Kafka", elsewhere],
        stdin=subprocess.PIPE,
    )
    try:
        cmdline = Path(f"/proc/{stand_in.pid}/cmdline")
        wait_until(lambda: b"kafka.Kafka" in cmdline.read_bytes(), 10, "the stand-in's exec")
        (run_dir / PID_FILE_NAME).write_text(f"{stand_in.pid}\n")
        old = time.time() - OLD_S
        os.utime(run_dir, (old, old))
        process.sweep_stale_run_dirs()
        assert run_dir.exists()
    finally:
        assert stand_in.stdin is not None
        stand_in.stdin.close()
        stand_in.wait(timeout=30)
