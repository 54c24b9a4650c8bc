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

The same package is a small CLI (``scripts/kafka-local`` wraps it)::

    python -m devtools.kafka_broker start    # last stdout line: KAFKA_BOOTSTRAP_SERVERS=...
    python -m devtools.kafka_broker status   # exit 0 if running, 1 if not
    python -m devtools.kafka_broker stop

``start`` leaves the broker running in the background and records it in
``.cache/kafka/local.json``; a second ``start`` reuses a broker that still answers.

The modules, each one job (importers use this package root, which re-exports the
public names):

- ``base``: paths, environment variables, defaults, :class:`KafkaBrokerError`;
- ``handle``: :class:`BrokerHandle`, the state file, bootstrap parsing, answering checks;
- ``process``: pids, signals, run dirs and their sweeping, JVM command lines;
- ``jars``: the Apache Kafka jars, resolved with Maven;
- ``local``: start/pause/resume/stop a KRaft broker from the jars;
- ``docker``: the same broker in a container, through testcontainers;
- ``provide``: :func:`start_broker`, :func:`stop_broker`, :func:`kafka_broker`;
- ``cli`` and ``__main__``: ``start``, ``status``, ``stop``.

Only the standard library, confluent-kafka and testcontainers (plus the docker SDK
it brings) are used.
"""

from devtools.kafka_broker.base import (
    BIND_RETRIES,
    BROKER_LOG_NAME,
    CACHE_DIR,
    DEFAULT_DOCKER_IMAGE,
    DEFAULT_HEAP_OPTS,
    DEFAULT_KAFKA_VERSION,
    DEFAULT_START_TIMEOUT,
    DOCKER_PING_TIMEOUT,
    ENV_BOOTSTRAP,
    ENV_DOCKER_IMAGE,
    ENV_HEAP_OPTS,
    ENV_MODE,
    ENV_START_TIMEOUT,
    ENV_STATE_FILE,
    ENV_VERSION,
    LIBS_MARKER_NAME,
    LOG_TAIL_LINES,
    MAVEN_TIMEOUT,
    PAUSED_FILE_NAME,
    PID_FILE_NAME,
    POM_FILE,
    REPO_ROOT,
    STATE_FILE,
    STOP_TIMEOUT,
    KafkaBrokerError,
    Kind,
    Mode,
    log,
)
from devtools.kafka_broker.cli import cli_start, cli_status, cli_stop, main
from devtools.kafka_broker.docker import docker_available, start_docker_broker, stop_docker_broker
from devtools.kafka_broker.handle import (
    BrokerHandle,
    broker_answers,
    clear_state,
    free_ports,
    port_open,
    read_state,
    wait_until_answers,
    write_state,
)
from devtools.kafka_broker.jars import ensure_kafka_libs, libs_dir
from devtools.kafka_broker.local import (
    pause_local_broker,
    resume_local_broker,
    start_local_broker,
    stop_local_broker,
)
from devtools.kafka_broker.process import pid_alive
from devtools.kafka_broker.provide import broker_running, kafka_broker, start_broker, stop_broker

__all__ = [
    "BIND_RETRIES",
    "BROKER_LOG_NAME",
    "CACHE_DIR",
    "DEFAULT_DOCKER_IMAGE",
    "DEFAULT_HEAP_OPTS",
    "DEFAULT_KAFKA_VERSION",
    "DEFAULT_START_TIMEOUT",
    "DOCKER_PING_TIMEOUT",
    "ENV_BOOTSTRAP",
    "ENV_DOCKER_IMAGE",
    "ENV_HEAP_OPTS",
    "ENV_MODE",
    "ENV_START_TIMEOUT",
    "ENV_STATE_FILE",
    "ENV_VERSION",
    "LIBS_MARKER_NAME",
    "LOG_TAIL_LINES",
    "MAVEN_TIMEOUT",
    "PAUSED_FILE_NAME",
    "PID_FILE_NAME",
    "POM_FILE",
    "REPO_ROOT",
    "STATE_FILE",
    "STOP_TIMEOUT",
    "BrokerHandle",
    "KafkaBrokerError",
    "Kind",
    "Mode",
    "broker_answers",
    "broker_running",
    "clear_state",
    "cli_start",
    "cli_status",
    "cli_stop",
    "docker_available",
    "ensure_kafka_libs",
    "free_ports",
    "kafka_broker",
    "libs_dir",
    "log",
    "main",
    "pause_local_broker",
    "pid_alive",
    "port_open",
    "read_state",
    "resume_local_broker",
    "start_broker",
    "start_docker_broker",
    "start_local_broker",
    "stop_broker",
    "stop_docker_broker",
    "stop_local_broker",
    "wait_until_answers",
    "write_state",
]
