"""The one entry point: provide a broker, from wherever it can come, and take it back.

:func:`start_broker` decides between ``KAFKA_BOOTSTRAP_SERVERS``, Docker and the
local jars (``KAFKA_BROKER_MODE`` can force Docker or jars); :func:`stop_broker`,
:func:`broker_running` and :func:`kafka_broker` dispatch on the handle's kind so
that callers never need to know which it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

from devtools.kafka_broker.base import (
    ENV_BOOTSTRAP,
    ENV_MODE,
    KafkaBrokerError,
    Mode,
    start_timeout,
)
from devtools.kafka_broker.docker import (
    docker_available,
    docker_container_running,
    start_docker_broker,
    stop_docker_broker,
)
from devtools.kafka_broker.handle import BrokerHandle, broker_answers, wait_until_answers
from devtools.kafka_broker.local import start_local_broker, stop_local_broker
from devtools.kafka_broker.process import is_our_broker


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
            wait_until_answers(external, min(30.0, start_timeout(timeout)))
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
        handle.pid is None or not is_our_broker(handle.pid, handle.run_dir)
    ):
        return False
    if handle.kind == "docker" and (
        not handle.container_id or not docker_container_running(handle.container_id)
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
