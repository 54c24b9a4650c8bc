"""What every part of the broker launcher shares: paths, settings, the error type.

It exists so that the other modules (handle, process, jars, local, docker, provide,
cli) can depend on one small leaf instead of on each other: where the repository,
the Maven pom and the cache live, the environment variables read, the defaults, the
one exception raised, progress output on stderr and a cross-process file lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

log = logging.getLogger("kafka_broker")

#: Kafka release run by the local (non-Docker) path. Kafka 4.x brokers need Java 17+.
DEFAULT_KAFKA_VERSION = "4.1.1"
#: Image for the Docker path: the same Apache Kafka release as the Maven path, from the
#: project's official image (testcontainers' KafkaContainer only drives cp-kafka 7.x,
#: which is Kafka 3.x, so the container is configured here through the image's
#: documented KAFKA_* environment variables).
DEFAULT_DOCKER_IMAGE = f"apache/kafka:{DEFAULT_KAFKA_VERSION}"

# This file is devtools/kafka_broker/base.py: the repository is three levels up.
REPO_ROOT = Path(__file__).resolve().parents[2]
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


def say(message: str) -> None:
    """Progress for humans: stderr, so that stdout stays machine-readable for the CLI."""
    print(f"kafka-broker: {message}", file=sys.stderr, flush=True)


def start_timeout(timeout: float | None) -> float:
    """The start-up bound: the caller's, else ``$KAFKA_START_TIMEOUT``, else 120 s."""
    if timeout is not None:
        return timeout
    raw = os.environ.get(ENV_START_TIMEOUT)
    return float(raw) if raw else DEFAULT_START_TIMEOUT


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (flock) held for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
