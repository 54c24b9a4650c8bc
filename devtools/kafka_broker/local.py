"""A single-node KRaft broker started from the jars: start, pause, resume, stop.

The path taken when neither ``KAFKA_BOOTSTRAP_SERVERS`` nor Docker provides a
broker. Each broker gets free ports and its own run dir
``.cache/kafka/run-<pid>-<random>/`` (config, data, ``broker.log``, ``broker.pid``),
removed when it stops; pause/resume keep the data, for tests of clients riding out
a broker restart.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from devtools.kafka_broker.base import (
    BIND_RETRIES,
    BROKER_LOG_NAME,
    CACHE_DIR,
    DEFAULT_HEAP_OPTS,
    DEFAULT_KAFKA_VERSION,
    ENV_HEAP_OPTS,
    ENV_VERSION,
    PAUSED_FILE_NAME,
    PID_FILE_NAME,
    STOP_TIMEOUT,
    KafkaBrokerError,
    say,
    start_timeout,
)
from devtools.kafka_broker.handle import BrokerHandle, free_ports, wait_until_answers
from devtools.kafka_broker.jars import ensure_kafka_libs
from devtools.kafka_broker.process import (
    check_java_version,
    find_java,
    jvm_command,
    log_tail,
    signal_and_wait,
    sweep_stale_run_dirs,
)


class _PortTakenError(KafkaBrokerError):
    """The broker could not bind its ports: someone took them after they were probed."""


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


def start_local_broker(
    version: str | None = None, *, detach: bool = False, timeout: float | None = None
) -> BrokerHandle:
    """Start a single-node KRaft broker from the official jars; returns when it answers.

    ``detach=True`` puts the JVM in a new session so it outlives the caller (CLI).
    """
    version = version or os.environ.get(ENV_VERSION) or DEFAULT_KAFKA_VERSION
    timeout = start_timeout(timeout)
    java = find_java()
    check_java_version(java)
    libs = ensure_kafka_libs(version)
    sweep_stale_run_dirs()
    last_error: KafkaBrokerError | None = None
    for attempt in range(1, BIND_RETRIES + 1):
        try:
            return _start_local_once(java, libs, version, detach=detach, timeout=timeout)
        except _PortTakenError as exc:
            # The free ports were grabbed by someone else between probing and binding.
            last_error = exc
            say(f"port collision on attempt {attempt}; retrying with new ports")
    assert last_error is not None
    raise last_error


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
        *jvm_command(java, libs, run_dir, "kafka.tools.StorageTool", "-Xmx256m"),
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
            raise KafkaBrokerError(f"kafka-storage format timed out.{log_tail(log_path)}") from exc
    if result.returncode != 0:
        raise KafkaBrokerError(
            f"kafka-storage format failed (exit {result.returncode}).{log_tail(log_path)}"
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
            describe_failure=lambda: log_tail(log_path),
        )
    except BaseException as exc:  # incl. KeyboardInterrupt: never leak the JVM
        crashed = process.poll() is not None
        if not crashed:
            signal_and_wait(process.pid, process, run_dir, STOP_TIMEOUT)
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if crashed and "Address already in use" in log_text:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise _PortTakenError(str(exc)) from exc
        if not isinstance(exc, KafkaBrokerError):
            shutil.rmtree(run_dir, ignore_errors=True)
        # Otherwise the run dir is kept for inspection; a later start sweeps it.
        raise
    say(
        f"Apache Kafka {version} (pid {process.pid}) answers at {bootstrap} "
        f"after {time.monotonic() - started:.1f} s; log: {log_path}"
    )
    return handle


def _launch_broker(
    java: str, libs: Path, run_dir: Path, heap: str, *, detach: bool
) -> subprocess.Popen[bytes]:
    """Start the broker JVM on the formatted ``run_dir`` (its log and pid file there)."""
    props = run_dir / "server.properties"
    cmd = [*jvm_command(java, libs, run_dir, "kafka.Kafka", heap), str(props)]
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
        signal_and_wait(handle.pid, handle.process, handle.run_dir, timeout)
    handle.pid = None
    handle.process = None


def resume_local_broker(handle: BrokerHandle, timeout: float | None = None) -> None:
    """Start a paused broker again on the same ports and data; returns when it answers."""
    if handle.run_dir is None or handle.version is None:
        raise KafkaBrokerError("only a local broker started by this process can be resumed")
    java = find_java()
    libs = ensure_kafka_libs(handle.version)
    heap = os.environ.get(ENV_HEAP_OPTS) or DEFAULT_HEAP_OPTS
    process = _launch_broker(java, libs, handle.run_dir, heap, detach=False)
    handle.pid, handle.process = process.pid, process
    # The pid file names the new JVM now: the sweep recognises it as alive.
    (handle.run_dir / PAUSED_FILE_NAME).unlink(missing_ok=True)
    log_path = handle.run_dir / BROKER_LOG_NAME
    wait_until_answers(
        handle.bootstrap,
        start_timeout(timeout),
        is_alive=lambda: process.poll() is None,
        describe_failure=lambda: log_tail(log_path),
    )


def stop_local_broker(handle: BrokerHandle, timeout: float = STOP_TIMEOUT) -> None:
    if handle.pid is not None:
        signal_and_wait(handle.pid, handle.process, handle.run_dir, timeout)
    if handle.run_dir is not None and handle.run_dir.parent == CACHE_DIR:
        shutil.rmtree(handle.run_dir, ignore_errors=True)
