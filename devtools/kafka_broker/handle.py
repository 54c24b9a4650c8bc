"""A broker's handle, where it is recorded, and how to tell that it answers.

Every way of providing a broker (an external one, Docker, local jars) ends in a
:class:`BrokerHandle`; this module holds what they share on the client side: the
handle and its JSON state file (``.cache/kafka/local.json``, or
``$KAFKA_LOCAL_STATE_FILE``) that lets ``kafka-local stop`` find a broker started
by an earlier ``start``, bootstrap-address parsing, free ports, and the checks that a
broker answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.kafka_broker.base import (
    BROKER_LOG_NAME,
    ENV_STATE_FILE,
    STATE_FILE,
    KafkaBrokerError,
    Kind,
    say,
)


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
        """The handle a state file records; ValueError or TypeError if it is not one.

        The file is edited by hand, half-written or left by another version: its
        content is checked here so that the CLI refuses it in one line instead of
        failing later with a traceback, or signalling a pid that is not a broker's.
        """
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, not {type(data).__name__}")
        kind = data.get("kind")
        if kind not in ("external", "docker", "local"):
            raise ValueError(f"unknown broker kind {kind!r}")
        return cls(
            kind=kind,
            bootstrap=str(data["bootstrap"]),
            version=data.get("version"),
            pid=_positive_int(data, "pid"),
            run_dir=Path(data["run_dir"]) if data.get("run_dir") else None,
            controller_port=_positive_int(data, "controller_port"),
            container_id=data.get("container_id"),
            started_at=float(data.get("started_at") or 0.0),
        )


def _positive_int(data: dict[str, Any], key: str) -> int | None:
    """``data[key]`` if it is a positive integer, None if absent; else ValueError.

    A pid of 0 or -1 handed to ``kill()`` signals the whole process group or every
    process the user may signal, and JSON's ``true`` is an int to Python.
    """
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{key} must be a positive integer, not {value!r}")
    return value


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
        say(f"ignoring unreadable state file {path}: {exc}")
        return None


def write_state(handle: BrokerHandle) -> None:
    path = _state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(handle.to_state(), indent=2) + "\n")
    tmp.replace(path)


def clear_state() -> None:
    _state_file().unlink(missing_ok=True)


def state_lock_path() -> Path:
    return _state_file().with_suffix(".lock")
