"""A Kafka broker in a Docker container, through testcontainers.

The path taken when a Docker engine answers (or ``KAFKA_BROKER_MODE=docker``): the
official ``apache/kafka`` image in KRaft mode, the same release as the jars. The
docker SDK ships no type hints, hence the ``Any`` at its edges.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from typing import Any

from devtools.kafka_broker.base import (
    DEFAULT_DOCKER_IMAGE,
    DOCKER_PING_TIMEOUT,
    ENV_DOCKER_IMAGE,
    say,
    start_timeout,
)
from devtools.kafka_broker.handle import BrokerHandle, free_ports, wait_until_answers


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
    timeout = start_timeout(timeout)
    if not ryuk:
        os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"
        with contextlib.suppress(Exception):
            from testcontainers.core.config import testcontainers_config

            testcontainers_config.ryuk_disabled = True
    image = os.environ.get(ENV_DOCKER_IMAGE) or DEFAULT_DOCKER_IMAGE
    say(f"starting Kafka container {image} via testcontainers ...")
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
    say(f"container {container_id[:12]} answers at {bootstrap}")
    return handle


def docker_container_running(container_id: str) -> bool:
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
