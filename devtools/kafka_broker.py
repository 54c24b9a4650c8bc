"""A real Kafka broker for tests and local development, started on demand.

One entry point, :func:`kafka_broker`, yields a bootstrap address. Where the
broker comes from is decided in this order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: that broker is used as is; nothing is
   started or stopped.
2. A Docker engine answers (checked with a short timeout): a container from
   testcontainers' Kafka module (image ``KAFKA_DOCKER_IMAGE``, KRaft mode).
3. Otherwise: a single-node Apache Kafka 4.x broker in KRaft mode, run from the
   official jars. Maven resolves them once with ``tools/kafka/pom.xml`` into
   ``.cache/kafka/libs-<version>/`` (git-ignored); every broker gets its own free
   ports and its own run directory ``.cache/kafka/run-<pid>-<random>/``, which is
   removed when the broker stops.

``KAFKA_BROKER_MODE=docker|local`` skips the detection and forces one of 2./3.

The same module is a small CLI (``scripts/kafka-local`` wraps it)::

    python -m devtools.kafka_broker start    # last stdout line: KAFKA_BOOTSTRAP_SERVERS=...
    python -m devtools.kafka_broker status   # exit 0 if running, 1 if not
    python -m devtools.kafka_broker stop

``start`` leaves the broker running in the background and records it in
``.cache/kafka/local.json``; a second ``start`` reuses a broker that still answers.

Only the standard library, confluent-kafka and testcontainers (plus the docker SDK
it brings) are used.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import importlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal, cast

log = logging.getLogger("kafka_broker")

# --------------------------------------------------------------------------- settings

#: Kafka release run by the local (non-Docker) path. Kafka 4.x brokers need Java 17+.
DEFAULT_KAFKA_VERSION = "4.1.1"
#: Image for the Docker path: the same Apache Kafka release as the Maven path, from the
#: project's official image (testcontainers' KafkaContainer only drives cp-kafka 7.x,
#: which is Kafka 3.x, so the container is configured here through the image's
#: documented KAFKA_* environment variables).
DEFAULT_DOCKER_IMAGE = f"apache/kafka:{DEFAULT_KAFKA_VERSION}"

REPO_ROOT = Path(__file__).resolve().parents[1]
POM_FILE = REPO_ROOT / "tools" / "kafka" / "pom.xml"
CACHE_DIR = REPO_ROOT / ".cache" / "kafka"
STATE_FILE = CACHE_DIR / "local.json"

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_MODE = "KAFKA_BROKER_MODE"  # auto (default) | docker | local
ENV_VERSION = "KAFKA_LOCAL_VERSION"
ENV_DOCKER_IMAGE = "KAFKA_DOCKER_IMAGE"
ENV_START_TIMEOUT = "KAFKA_START_TIMEOUT"  # seconds until the broker must answer
ENV_HEAP_OPTS = "KAFKA_LOCAL_HEAP_OPTS"
ENV_STATE_FILE = "KAFKA_LOCAL_STATE_FILE"  # override the CLI state file (used by tests)

DEFAULT_START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
MAVEN_TIMEOUT = 900.0
DOCKER_PING_TIMEOUT = 3.0
DEFAULT_HEAP_OPTS = "-Xms256m -Xmx512m"
LOG_TAIL_LINES = 40
BROKER_LOG_NAME = "broker.log"
PID_FILE_NAME = "broker.pid"
# Names the live process that paused the broker and will resume it: its run dir is not stale.
PAUSED_FILE_NAME = "broker.paused"
LIBS_MARKER_NAME = ".complete"
BIND_RETRIES = 3

Mode = Literal["auto", "docker", "local"]
Kind = Literal["external", "docker", "local"]


class KafkaBrokerError(RuntimeError):
    """The broker could not be provided (resolved, started, reached or stopped)."""


@dataclasses.dataclass
class BrokerHandle:
    """A broker obtained from :func:`start_broker`; pass it to :func:`stop_broker`."""

    kind: Kind
    bootstrap: str
    version: str | None = None
    pid: int | None = None
    run_dir: Path | None = None
    controller_port: int | None = None
    container_id: str | None = None
    started_at: float = dataclasses.field(default_factory=time.time)
    # Live objects, only in the process that started the broker.
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)
    container: Any = dataclasses.field(default=None, repr=False)

    @property
    def log_file(self) -> Path | None:
        return self.run_dir / BROKER_LOG_NAME if self.run_dir else None

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "bootstrap": self.bootstrap,
            "version": self.version,
            "pid": self.pid,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "controller_port": self.controller_port,
            "container_id": self.container_id,
            "started_at": self.started_at,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> BrokerHandle:
        kind = data.get("kind")
        if kind not in ("external", "docker", "local"):
            raise ValueError(f"unknown broker kind {kind!r}")
        return cls(
            kind=kind,
            bootstrap=str(data["bootstrap"]),
            version=data.get("version"),
            pid=data.get("pid"),
            run_dir=Path(data["run_dir"]) if data.get("run_dir") else None,
            controller_port=data.get("controller_port"),
            container_id=data.get("container_id"),
            started_at=float(data.get("started_at") or 0.0),
        )


def _say(message: str) -> None:
    """Progress for humans: stderr, so that stdout stays machine-readable for the CLI."""
    print(f"kafka-broker: {message}", file=sys.stderr, flush=True)


def _start_timeout(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    raw = os.environ.get(ENV_START_TIMEOUT)
    return float(raw) if raw else DEFAULT_START_TIMEOUT


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- probing


def _split_bootstrap(bootstrap: str) -> tuple[str, int]:
    first = bootstrap.split(",", maxsplit=1)[0].strip()
    first = re.sub(r"^[A-Za-z_]+://", "", first)
    host, _, port = first.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


def port_open(bootstrap: str, timeout: float = 1.0) -> bool:
    """True if a TCP connection to the first bootstrap address succeeds."""
    try:
        host, port = _split_bootstrap(bootstrap)
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def broker_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True if the cluster returns metadata listing at least one live broker."""
    if not port_open(bootstrap, timeout=min(timeout, 2.0)):
        return False
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "socket.timeout.ms": max(1000, int(timeout * 1000)),
            # Connection-refused chatter while the broker boots is expected, not news.
            "log_level": 2,
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:
        return False
    return len(metadata.brokers) > 0


def wait_until_answers(
    bootstrap: str,
    timeout: float,
    *,
    is_alive: Callable[[], bool] | None = None,
    describe_failure: Callable[[], str] | None = None,
) -> None:
    """Poll until :func:`broker_answers` or raise :class:`KafkaBrokerError`.

    ``is_alive()`` (optional) is checked between probes so that a crashed broker
    fails fast; ``describe_failure()`` (optional) returns text (a log tail) for the
    exception message.
    """
    deadline = time.monotonic() + timeout
    while True:
        if is_alive is not None and not is_alive():
            detail = describe_failure() if describe_failure else ""
            raise KafkaBrokerError(f"Kafka broker at {bootstrap} exited during start-up.{detail}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = describe_failure() if describe_failure else ""
            raise KafkaBrokerError(
                f"Kafka broker at {bootstrap} did not answer within {timeout:.0f} s.{detail}"
            )
        if broker_answers(bootstrap, timeout=max(0.5, min(5.0, remaining))):
            return
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))


# --------------------------------------------------------------------------- processes


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


def _is_our_broker(pid: int, run_dir: Path | None) -> bool:
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


def _signal_and_wait(
    pid: int, process: subprocess.Popen[bytes] | None, run_dir: Path | None, timeout: float
) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""

    def gone() -> bool:
        if process is not None:
            return process.poll() is not None
        return not _is_our_broker(pid, run_dir)

    for sig, wait_for in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if gone():
            return
        if sig == signal.SIGKILL:
            _say(f"broker pid {pid} did not stop within {timeout:.0f} s; sending SIGKILL")
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


def _tail(path: Path | None, lines: int = LOG_TAIL_LINES) -> str:
    if path is None or not path.exists():
        return "\n(no broker log was written)"
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        text = fh.read().decode("utf-8", errors="replace")
    tail = "\n".join(text.splitlines()[-lines:])
    return f"\n--- last {lines} lines of {path} ---\n{tail}\n--- end of broker log ---"


# --------------------------------------------------------------------------- local jars


def _java() -> str:
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


def _check_java_version(java: str) -> None:
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


def libs_dir(version: str) -> Path:
    return CACHE_DIR / f"libs-{version}"


def ensure_kafka_libs(version: str) -> Path:
    """Resolve the broker's jars with Maven into ``.cache/kafka/libs-<version>/``, once.

    The marker file is written only after a complete copy, so an interrupted download
    is redone on the next call. A lock file serialises concurrent callers.
    """
    target = libs_dir(version)
    marker = target / LIBS_MARKER_NAME
    if marker.is_file():
        return target
    with _file_lock(CACHE_DIR / f"libs-{version}.lock"):
        if marker.is_file():  # another process finished it while we waited
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise KafkaBrokerError(
                "mvn not found: the local Kafka broker resolves its jars with Maven "
                "(apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS."
            )
        if target.exists():
            shutil.rmtree(target)
        for leftover in CACHE_DIR.glob(f"libs-{version}.partial-*"):  # interrupted runs
            shutil.rmtree(leftover, ignore_errors=True)
        partial = CACHE_DIR / f"libs-{version}.partial-{os.getpid()}"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM_FILE),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ]
        _say(f"resolving Apache Kafka {version} jars with Maven (first run only) ...")
        started = time.monotonic()
        try:
            result = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=MAVEN_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise KafkaBrokerError(f"Maven did not finish within {MAVEN_TIMEOUT:.0f} s") from exc
        main_jar = partial / f"kafka_2.13-{version}.jar"
        if result.returncode != 0 or not main_jar.is_file():
            shutil.rmtree(partial, ignore_errors=True)
            output = (result.stdout + result.stderr).strip().splitlines()[-60:]
            raise KafkaBrokerError(
                f"Maven could not resolve Kafka {version} (exit {result.returncode}): "
                f"{' '.join(cmd)}\n" + "\n".join(output)
            )
        jars = sorted(p.name for p in partial.glob("*.jar"))
        partial.rename(target)
        tmp_marker = target / (LIBS_MARKER_NAME + ".tmp")
        tmp_marker.write_text(json.dumps({"version": version, "jars": jars}, indent=1) + "\n")
        tmp_marker.rename(marker)
        _say(f"{len(jars)} jars in {target} ({time.monotonic() - started:.1f} s)")
        return target


# --------------------------------------------------------------------------- local broker


def free_ports(count: int) -> list[int]:
    """Ports the kernel considers free right now (all bound at once, so distinct)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _random_cluster_id() -> str:
    """A Kafka Uuid string (22 chars, URL-safe base64), never starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _server_properties(run_dir: Path, port: int, controller_port: int) -> str:
    data_dir = run_dir / "data"
    return f"""\
# Single-node KRaft broker+controller for local tests (generated; do not edit).
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
"""


_LOG4J2_PROPERTIES = """\
# Broker logging for local tests: everything to stdout, which is redirected to
# broker.log in the run directory (generated; do not edit).
status = warn
name = kafka-local
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
# The full config dump (hundreds of lines, several times); server.properties has it.
logger.config.name = org.apache.kafka.common.config.AbstractConfig
logger.config.level = WARN
"""


def _sweep_stale_run_dirs(max_age: float = 60.0) -> None:
    """Remove run dirs left behind by brokers that died without cleaning up."""
    if not CACHE_DIR.is_dir():
        return
    now = time.time()
    for run_dir in CACHE_DIR.glob("run-*"):
        try:
            if now - run_dir.stat().st_mtime < max_age:
                continue  # possibly a broker being set up right now
            if _paused_by_live_process(run_dir):
                continue  # stopped on purpose; its owner starts it again on the same data
            pid_file = run_dir / PID_FILE_NAME
            if pid_file.is_file():
                pid = int(pid_file.read_text().strip() or "0")
                if pid > 0 and _is_our_broker(pid, run_dir):
                    continue
            elif now - run_dir.stat().st_mtime < 15 * 60:
                continue  # still formatting, or a very slow start
            shutil.rmtree(run_dir, ignore_errors=True)
        except (OSError, ValueError):
            continue


def _paused_by_live_process(run_dir: Path) -> bool:
    try:
        owner = int((run_dir / PAUSED_FILE_NAME).read_text().strip() or "0")
    except (OSError, ValueError):
        return False
    return owner > 0 and pid_alive(owner)


def _jvm_command(java: str, libs: Path, run_dir: Path, main: str, heap: str) -> list[str]:
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


def start_local_broker(
    version: str | None = None, *, detach: bool = False, timeout: float | None = None
) -> BrokerHandle:
    """Start a single-node KRaft broker from the official jars; returns when it answers.

    ``detach=True`` puts the JVM in a new session so it outlives the caller (CLI).
    """
    version = version or os.environ.get(ENV_VERSION) or DEFAULT_KAFKA_VERSION
    timeout = _start_timeout(timeout)
    java = _java()
    _check_java_version(java)
    libs = ensure_kafka_libs(version)
    _sweep_stale_run_dirs()
    last_error: KafkaBrokerError | None = None
    for attempt in range(1, BIND_RETRIES + 1):
        try:
            return _start_local_once(java, libs, version, detach=detach, timeout=timeout)
        except _PortTakenError as exc:
            # The free ports were grabbed by someone else between probing and binding.
            last_error = exc
            _say(f"port collision on attempt {attempt}; retrying with new ports")
    assert last_error is not None
    raise last_error


class _PortTakenError(KafkaBrokerError):
    pass


def _start_local_once(
    java: str, libs: Path, version: str, *, detach: bool, timeout: float
) -> BrokerHandle:
    run_dir = CACHE_DIR / f"run-{os.getpid()}-{secrets.token_hex(4)}"
    (run_dir / "data").mkdir(parents=True)
    port, controller_port = free_ports(2)
    bootstrap = f"127.0.0.1:{port}"
    props = run_dir / "server.properties"
    props.write_text(_server_properties(run_dir, port, controller_port))
    (run_dir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
    log_path = run_dir / BROKER_LOG_NAME
    heap = os.environ.get(ENV_HEAP_OPTS) or DEFAULT_HEAP_OPTS

    # 1. Format the storage. --standalone bootstraps a single-voter dynamic quorum
    #    (KIP-853) from controller.quorum.bootstrap.servers, as Kafka 4.x's own
    #    config/server.properties + quickstart do.
    fmt = [
        *_jvm_command(java, libs, run_dir, "kafka.tools.StorageTool", "-Xmx256m"),
        "format",
        "--standalone",
        "-t",
        _random_cluster_id(),
        "-c",
        str(props),
    ]
    with open(log_path, "ab") as log_fh:
        log_fh.write(f"$ {' '.join(fmt)}\n".encode())
        log_fh.flush()
        try:
            result = subprocess.run(
                fmt,
                cwd=run_dir,
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                timeout=max(timeout, 60.0),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaBrokerError(f"kafka-storage format timed out.{_tail(log_path)}") from exc
    if result.returncode != 0:
        raise KafkaBrokerError(
            f"kafka-storage format failed (exit {result.returncode}).{_tail(log_path)}"
        )

    # 2. Start the broker.
    started = time.monotonic()
    process = _launch_broker(java, libs, run_dir, heap, detach=detach)
    handle = BrokerHandle(
        kind="local",
        bootstrap=bootstrap,
        version=version,
        pid=process.pid,
        run_dir=run_dir,
        controller_port=controller_port,
        process=process,
    )

    # 3. Wait until it answers metadata requests with itself as a live broker.
    try:
        wait_until_answers(
            bootstrap,
            timeout,
            is_alive=lambda: process.poll() is None,
            describe_failure=lambda: _tail(log_path),
        )
    except BaseException as exc:  # incl. KeyboardInterrupt: never leak the JVM
        crashed = process.poll() is not None
        if not crashed:
            _signal_and_wait(process.pid, process, run_dir, STOP_TIMEOUT)
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if crashed and "Address already in use" in log_text:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise _PortTakenError(str(exc)) from exc
        if not isinstance(exc, KafkaBrokerError):
            shutil.rmtree(run_dir, ignore_errors=True)
        # Otherwise the run dir is kept for inspection; a later start sweeps it.
        raise
    _say(
        f"Apache Kafka {version} (pid {process.pid}) answers at {bootstrap} "
        f"after {time.monotonic() - started:.1f} s; log: {log_path}"
    )
    return handle


def _launch_broker(
    java: str, libs: Path, run_dir: Path, heap: str, *, detach: bool
) -> subprocess.Popen[bytes]:
    """Start the broker JVM on the formatted ``run_dir`` (its log and pid file there)."""
    props = run_dir / "server.properties"
    cmd = [*_jvm_command(java, libs, run_dir, "kafka.Kafka", heap), str(props)]
    with open(run_dir / BROKER_LOG_NAME, "ab") as log_fh:
        log_fh.write(f"$ {' '.join(cmd)}\n".encode())
        log_fh.flush()
        process = subprocess.Popen(
            cmd,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
        )
    (run_dir / PID_FILE_NAME).write_text(f"{process.pid}\n")
    return process


def pause_local_broker(handle: BrokerHandle, timeout: float = STOP_TIMEOUT) -> None:
    """Stop the broker's JVM but keep its data, for :func:`resume_local_broker` (tests of
    clients riding out a broker restart).

    The run dir is marked as paused by this process first: while the JVM is down its
    pid file names a dead process, and another process starting a broker would
    otherwise sweep the data away as stale (seen with parallel test sessions).
    """
    if handle.run_dir is not None:
        (handle.run_dir / PAUSED_FILE_NAME).write_text(f"{os.getpid()}\n")
    if handle.pid is not None:
        _signal_and_wait(handle.pid, handle.process, handle.run_dir, timeout)
    handle.pid = None
    handle.process = None


def resume_local_broker(handle: BrokerHandle, timeout: float | None = None) -> None:
    """Start a paused broker again on the same ports and data; returns when it answers."""
    if handle.run_dir is None or handle.version is None:
        raise KafkaBrokerError("only a local broker started by this process can be resumed")
    java = _java()
    libs = ensure_kafka_libs(handle.version)
    heap = os.environ.get(ENV_HEAP_OPTS) or DEFAULT_HEAP_OPTS
    process = _launch_broker(java, libs, handle.run_dir, heap, detach=False)
    handle.pid, handle.process = process.pid, process
    # The pid file names the new JVM now: the sweep recognises it as alive.
    (handle.run_dir / PAUSED_FILE_NAME).unlink(missing_ok=True)
    log_path = handle.run_dir / BROKER_LOG_NAME
    wait_until_answers(
        handle.bootstrap,
        _start_timeout(timeout),
        is_alive=lambda: process.poll() is None,
        describe_failure=lambda: _tail(log_path),
    )


def stop_local_broker(handle: BrokerHandle, timeout: float = STOP_TIMEOUT) -> None:
    if handle.pid is not None:
        _signal_and_wait(handle.pid, handle.process, handle.run_dir, timeout)
    if handle.run_dir is not None and handle.run_dir.parent == CACHE_DIR:
        shutil.rmtree(handle.run_dir, ignore_errors=True)


# --------------------------------------------------------------------------- docker


def _docker_sdk() -> Any:
    """The docker SDK (a dependency of testcontainers; it ships no type hints)."""
    return importlib.import_module("docker")


def docker_available(timeout: float = DOCKER_PING_TIMEOUT) -> bool:
    """True if a Docker engine answers a ping within ``timeout`` seconds."""
    try:
        client = _docker_sdk().from_env(timeout=int(max(1, timeout)))
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            client.close()


def _apache_kafka_container(image: str, port: int) -> Any:
    """An apache/kafka container in KRaft mode whose listener is ``127.0.0.1:port`` on both sides.

    The advertised address must be the one clients dial, which a random host port
    mapping only reveals after start; binding the same free port on both sides
    avoids that chicken-and-egg problem.
    """
    from testcontainers.core.container import DockerContainer

    environment = {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://127.0.0.1:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@127.0.0.1:9093",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
    }
    return DockerContainer(image).with_envs(**environment).with_bind_ports(port, port)


def start_docker_broker(*, ryuk: bool = True, timeout: float | None = None) -> BrokerHandle:
    """Start a KRaft Kafka container with testcontainers.

    ``ryuk=False`` (CLI) disables the reaper so that the container outlives this
    process; it is then removed by ``stop`` via its recorded id.
    """
    timeout = _start_timeout(timeout)
    if not ryuk:
        os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
        with contextlib.suppress(Exception):
            from testcontainers.core.config import testcontainers_config

            testcontainers_config.ryuk_disabled = True
    image = os.environ.get(ENV_DOCKER_IMAGE) or DEFAULT_DOCKER_IMAGE
    _say(f"starting Kafka container {image} via testcontainers ...")
    port = free_ports(1)[0]
    container = _apache_kafka_container(image, port)
    started = time.monotonic()
    try:
        container.start()
        bootstrap = f"127.0.0.1:{port}"
        container_id = str(container.get_wrapped_container().id)
        handle = BrokerHandle(
            kind="docker",
            bootstrap=bootstrap,
            version=image,
            container_id=container_id,
            container=container,
        )
        wait_until_answers(bootstrap, max(10.0, timeout - (time.monotonic() - started)))
    except BaseException:
        with contextlib.suppress(Exception):
            container.stop()
        raise
    _say(f"container {container_id[:12]} answers at {bootstrap}")
    return handle


def _docker_container_running(container_id: str) -> bool:
    try:
        client = _docker_sdk().from_env(timeout=10)
        try:
            return bool(client.containers.get(container_id).status == "running")
        finally:
            client.close()
    except Exception:
        return False


def stop_docker_broker(handle: BrokerHandle) -> None:
    if handle.container is not None:
        handle.container.stop()
        return
    if handle.container_id:
        docker = _docker_sdk()
        client = docker.from_env(timeout=30)
        try:
            client.containers.get(handle.container_id).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        finally:
            client.close()


# --------------------------------------------------------------------------- entry point


def _mode() -> Mode:
    raw = (os.environ.get(ENV_MODE) or "auto").strip().lower()
    if raw not in ("auto", "docker", "local"):
        raise KafkaBrokerError(f"{ENV_MODE} must be auto, docker or local, not {raw!r}")
    return cast(Mode, raw)


def start_broker(
    *, detach: bool = False, timeout: float | None = None, mode: Mode | None = None
) -> BrokerHandle:
    """Provide a broker: ``KAFKA_BOOTSTRAP_SERVERS``, else Docker, else local jars."""
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        try:
            wait_until_answers(external, min(30.0, _start_timeout(timeout)))
        except KafkaBrokerError as exc:
            raise KafkaBrokerError(f"{ENV_BOOTSTRAP}={external} is set, but: {exc}") from exc
        return BrokerHandle(kind="external", bootstrap=external)
    mode = mode or _mode()
    if mode == "docker" or (mode == "auto" and docker_available()):
        return start_docker_broker(ryuk=not detach, timeout=timeout)
    return start_local_broker(detach=detach, timeout=timeout)


def stop_broker(handle: BrokerHandle) -> None:
    """Stop what :func:`start_broker` started (an external broker is left alone)."""
    if handle.kind == "docker":
        stop_docker_broker(handle)
    elif handle.kind == "local":
        stop_local_broker(handle)


def broker_running(handle: BrokerHandle) -> bool:
    """True if the recorded broker is still there and answers."""
    if handle.kind == "local" and (
        handle.pid is None or not _is_our_broker(handle.pid, handle.run_dir)
    ):
        return False
    if handle.kind == "docker" and (
        not handle.container_id or not _docker_container_running(handle.container_id)
    ):
        return False
    return broker_answers(handle.bootstrap)


@contextmanager
def kafka_broker(*, timeout: float | None = None) -> Iterator[str]:
    """Yield the bootstrap address of a running broker; stop it afterwards if we started it."""
    handle = start_broker(timeout=timeout)
    try:
        yield handle.bootstrap
    finally:
        stop_broker(handle)


# --------------------------------------------------------------------------- CLI


def _state_file() -> Path:
    override = os.environ.get(ENV_STATE_FILE)
    return Path(override) if override else STATE_FILE


def read_state() -> BrokerHandle | None:
    path = _state_file()
    try:
        return BrokerHandle.from_state(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        _say(f"ignoring unreadable state file {path}: {exc}")
        return None


def write_state(handle: BrokerHandle) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(handle.to_state(), indent=2) + "\n")
    tmp.replace(path)


def clear_state() -> None:
    _state_file().unlink(missing_ok=True)


def _lock_path() -> Path:
    return _state_file().with_suffix(".lock")


def _print_address(bootstrap: str, out: IO[str]) -> None:
    print(f"{ENV_BOOTSTRAP}={bootstrap}", file=out, flush=True)


def cli_start(mode: Mode | None, timeout: float | None) -> int:
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        _say(f"{ENV_BOOTSTRAP} is already set; not starting a broker")
        _print_address(external, sys.stdout)
        return 0
    with _file_lock(_lock_path()):
        current = read_state()
        if current is not None:
            if broker_running(current):
                _say(f"reusing the running {current.kind} broker at {current.bootstrap}")
                _print_address(current.bootstrap, sys.stdout)
                return 0
            _say(f"recorded {current.kind} broker at {current.bootstrap} is gone; cleaning up")
            with contextlib.suppress(Exception):
                stop_broker(current)
            clear_state()
        handle = start_broker(detach=True, timeout=timeout, mode=mode)
        write_state(handle)
    _print_address(handle.bootstrap, sys.stdout)
    return 0


def cli_stop() -> int:
    with _file_lock(_lock_path()):
        current = read_state()
        if current is None:
            _say("no local broker recorded; nothing to stop")
            return 0
        _say(f"stopping {current.kind} broker at {current.bootstrap}")
        stop_broker(current)
        clear_state()
    _say("stopped")
    return 0


def cli_status() -> int:
    current = read_state()
    if current is None:
        print("kafka: not running")
        return 1
    if not broker_running(current):
        print(f"kafka: not running (recorded {current.kind} broker at {current.bootstrap} is gone)")
        return 1
    if current.kind == "local":
        what = f"Apache Kafka {current.version}, pid {current.pid}"
    else:
        what = f"container {(current.container_id or '')[:12]} ({current.version})"
    print(f"kafka: running, {what}")
    if current.log_file:
        print(f"log: {current.log_file}")
    _print_address(current.bootstrap, sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka-local",
        description="Start, stop or inspect the local Kafka broker used by tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a broker in the background (or reuse it)")
    start.add_argument(
        "--mode",
        choices=("auto", "docker", "local"),
        default=None,
        help=f"where the broker comes from (default: ${ENV_MODE} or auto)",
    )
    start.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait until it answers"
    )
    sub.add_parser("stop", help="stop the broker started by `start`")
    sub.add_parser("status", help="exit 0 if the broker runs, 1 if not")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            return cli_start(args.mode, args.timeout)
        if args.command == "stop":
            return cli_stop()
        return cli_status()
    except KafkaBrokerError as exc:
        print(f"kafka-broker: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
