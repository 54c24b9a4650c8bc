"""Shared pytest fixtures.

Sections:
- Hypothesis: one profile for every property test.
- Configuration files: ``write_config`` (tests/support/configs.py).
- Kafka: a real broker (see devtools/kafka_broker/), per-test topics and groups.

Add further shared fixtures in their own section below; keep test-specific ones
next to the tests that use them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from hypothesis import HealthCheck, settings

from devtools.kafka_broker import BrokerHandle, kafka_broker, start_local_broker, stop_local_broker

# =========================================================================== Hypothesis
#
# No per-example deadline: on a loaded 2-core machine a slow example is noise, not
# a failure (performance is measured by bench/, never asserted in tests).

settings.register_profile("bridge", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bridge")

# =========================================================================== Configuration files

pytest_plugins = ["tests.support.configs"]  # the write_config fixture

# =========================================================================== Kafka
#
# `kafka_bootstrap` is session-scoped and lazy: the broker is only provided when a
# test (typically marked `@pytest.mark.kafka`) requests it, so unit-test runs never
# start Kafka. It honours KAFKA_BOOTSTRAP_SERVERS (e.g. set by `.ci/run` after
# `scripts/kafka-local start`); otherwise it starts its own broker and stops it at
# the end of the session.

KAFKA_TOPIC_READY_TIMEOUT = 30.0

NewTopicFactory = Callable[..., str]


def _name_fragment(request: pytest.FixtureRequest, limit: int = 60) -> str:
    """The test's name reduced to characters legal in topic and group names."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")
    return name[:limit] or "test"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address (``host:port``) of a real Kafka broker for this session."""
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """An AdminClient connected to ``kafka_bootstrap``."""
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def new_topic(
    request: pytest.FixtureRequest, kafka_admin: AdminClient
) -> Iterator[NewTopicFactory]:
    """Factory creating a uniquely named topic and waiting until it is usable.

    ``new_topic(partitions=1, config=None) -> str``. The topics are deleted again
    (best effort) after the test.
    """
    admin = kafka_admin
    created: list[str] = []

    def create(partitions: int = 1, config: dict[str, str] | None = None) -> str:
        name = f"test-{_name_fragment(request)}-{uuid.uuid4().hex[:12]}"
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
            operation_timeout=KAFKA_TOPIC_READY_TIMEOUT,
            request_timeout=KAFKA_TOPIC_READY_TIMEOUT,
        )
        futures[name].result(timeout=KAFKA_TOPIC_READY_TIMEOUT)
        created.append(name)
        _wait_for_topic(admin, name, partitions)
        return name

    yield create

    if created:
        try:
            for future in admin.delete_topics(created, operation_timeout=10).values():
                future.result(timeout=15)
        except Exception as exc:  # cleanup only; the broker is disposable
            print(f"warning: could not delete test topics {created}: {exc}")


def _wait_for_topic(admin: AdminClient, name: str, partitions: int) -> None:
    """Wait until metadata shows every partition of ``name`` with a leader."""
    deadline = time.monotonic() + KAFKA_TOPIC_READY_TIMEOUT
    state = "no metadata yet"
    while time.monotonic() < deadline:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if topic is not None and topic.error is None:
            leaders = [p.leader for p in topic.partitions.values() if p.error is None]
            if len(leaders) == partitions and all(leader >= 0 for leader in leaders):
                return
            state = f"{len(leaders)}/{partitions} partitions with leaders {leaders}"
        elif topic is not None:
            state = f"error {topic.error}"
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} not ready within {KAFKA_TOPIC_READY_TIMEOUT:.0f} s ({state})")


@pytest.fixture
def unique_group_id(request: pytest.FixtureRequest) -> str:
    """A consumer group id no other test (or earlier run) uses."""
    return f"group-{_name_fragment(request)}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_broker() -> Iterator[BrokerHandle]:
    """A broker of the test's own, which it may stop and restart (pause_local_broker,
    resume_local_broker); the shared session broker must never be stopped."""
    handle = start_local_broker()
    try:
        yield handle
    finally:
        stop_local_broker(handle)
