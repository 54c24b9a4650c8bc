"""The broker JVM as an operating-system process: pids, signals, run dirs, commands.

Kept apart from the Kafka specifics because these are the dangerous parts: a
recorded pid may have been reused by an unrelated process, and a run dir may belong
to a live broker of another worktree sharing the cache. Everything that signals a
pid or deletes a run dir first asks :func:`is_our_broker`, which matches the run
dir's unique *name* (not its path, which has other spellings through symlinks).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from devtools.kafka_broker.base import (
    CACHE_DIR,
    LOG_TAIL_LINES,
    PAUSED_FILE_NAME,
    PID_FILE_NAME,
    KafkaBrokerError,
    say,
)


def _read_cmdline(pid: int) -> bytes | None:
    """The process' command line, b"" for a zombie, None if /proc cannot tell."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b"" if Path("/proc/self").exists() else None
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (e.g. macOS): trust kill(0)
    return stat.rpartition(")")[2].split()[0:1] != ["Z"]


def is_our_broker(pid: int, run_dir: Path | None) -> bool:
    """True if ``pid`` is alive and is the kafka.Kafka JVM started for ``run_dir``.

    Guards against signalling an unrelated process that reused a recorded pid.
    """
    if not pid_alive(pid):
        return False
    cmdline = _read_cmdline(pid)
    if cmdline is None:
        return True  # cannot verify on this platform
    # The run dir's name (run-<pid>-<random>) is unique; its full path is not a safe
    # test: the same directory has other spellings (a symlinked .cache, a git
    # worktree sharing the cache), and a sweep that misjudged a live broker as stale
    # would delete its data from under it.
    return b"kafka.Kafka" in cmdline and (run_dir is None or os.fsencode(run_dir.name) in cmdline)


def signal_and_wait(
    pid: int, process: subprocess.Popen[bytes] | None, run_dir: Path | None, timeout: float
) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""

    def gone() -> bool:
        if process is not None:
            return process.poll() is not None
        return not is_our_broker(pid, run_dir)

    for sig, wait_for in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if gone():
            return
        if sig == signal.SIGKILL:
            say(f"broker pid {pid} did not stop within {timeout:.0f} s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_for
        while time.monotonic() < deadline:
            if process is not None:
                try:
                    process.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
                return
            if gone():
                return
            time.sleep(0.1)
    if not gone():
        raise KafkaBrokerError(f"Kafka broker pid {pid} survived SIGKILL")


def log_tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "\n(no broker log was written)"
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\n--- last {lines} lines of {path} ---\n{tail}\n--- end of broker log ---"


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise KafkaBrokerError(
            "java not found: the local Kafka broker needs Java 17+ on PATH (or JAVA_HOME), "
            "e.g. `apt-get install openjdk-17-jre-headless`, or set KAFKA_BOOTSTRAP_SERVERS."
        )
    return found


def check_java_version(java: str) -> None:
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return  # unknown format: let the JVM itself complain later
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392"
        major = int(match.group(2))
    if major < 17:
        raise KafkaBrokerError(f"Kafka 4.x needs Java 17 or newer; {java} is Java {major}.")


def sweep_stale_run_dirs(max_age: float = 60.0) -> None:
    """Remove run dirs left behind by brokers that died without cleaning up."""
    if not CACHE_DIR.is_dir():
        return
    now = time.time()
    for run_dir in CACHE_DIR.glob("run-*"):
        try:
            if now - run_dir.stat().st_mtime < max_age:
                continue  # possibly a broker being set up right now
            if paused_by_live_process(run_dir):
                continue  # stopped on purpose; its owner starts it again on the same data
            pid_file = run_dir / PID_FILE_NAME
            if pid_file.is_file():
                pid = int(pid_file.read_text().strip() or "0")
                if pid > 0 and is_our_broker(pid, run_dir):
                    continue
            elif now - run_dir.stat().st_mtime < 15 * 60:
                continue  # still formatting, or a very slow start
            shutil.rmtree(run_dir, ignore_errors=True)
        except (OSError, ValueError):
            continue


def paused_by_live_process(run_dir: Path) -> bool:
    """Whether a live process paused this run dir's broker (and will resume it)."""
    try:
        owner = int((run_dir / PAUSED_FILE_NAME).read_text().strip() or "0")
    except (OSError, ValueError):
        return False
    return owner > 0 and pid_alive(owner)


def jvm_command(java: str, libs: Path, run_dir: Path, main: str, heap: str) -> list[str]:
    return [
        java,
        *heap.split(),
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={run_dir}",
        f"-Dlog4j2.configurationFile={run_dir / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main,
    ]
