"""The shared pytest fixtures, loaded as a plugin by tests/conftest.py (``pytest_plugins``).

Fixtures live here rather than in one package's conftest so that every test folder
gets the same ones and no module ever imports a conftest; the helpers they build
on (tests/support/*.py) are plain modules that benchmarks import too.

- Kafka: ``kafka_bootstrap`` (session; a broker only when a test asks for it),
  ``kafka_admin``, ``new_topic``, ``unique_group_id``, ``own_broker``.
- Service: ``service`` (a simulator, topics and bridges on a broker; all stopped after).
- Configuration: ``write_config``.
- Schemas: ``shipment_schema``, ``order_schema``, ``shipment_example``, ``order_example``,
  ``schema_registry`` (a test Schema Registry over real HTTP).
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from bridge.codecs import AvroSchema, load_avro_schema
from devtools.kafka_broker import BrokerHandle, kafka_broker, start_local_broker, stop_local_broker
from tests.support.configs import HEADER, WriteConfig
from tests.support.kafka import NewTopicFactory, TopicMaker
from tests.support.paths import SCHEMAS
from tests.support.schema_registry import TestSchemaRegistry, running_schema_registry
from tests.support.service import ServiceFactory, ServiceSetup, make_setup


def _name_fragment(request: pytest.FixtureRequest, limit: int = 60) -> str:
    """The test's name reduced to characters legal in topic and group names."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")
    return name[:limit] or "test"


# =========================================================================== Kafka
#
# `kafka_bootstrap` is session-scoped and lazy: the broker is only provided when a
# test (typically marked `@pytest.mark.kafka`) requests it, so unit-test runs never
# start Kafka. It honours KAFKA_BOOTSTRAP_SERVERS (e.g. set by `.ci/run` after
# `scripts/kafka-local start`); otherwise it starts its own broker and stops it at
# the end of the session.


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
def new_topic(request: pytest.FixtureRequest, kafka_bootstrap: str) -> Iterator[NewTopicFactory]:
    """``new_topic(partitions=1, config=None) -> name``: a fresh topic on the shared broker,
    ready (every partition led) when returned; deleted again (best effort) after the test."""
    maker = TopicMaker(kafka_bootstrap, f"test-{_name_fragment(request)}")
    yield maker
    maker.delete_all()


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


# =========================================================================== Service


@pytest.fixture
def service(request: pytest.FixtureRequest, tmp_path: Path, unique_group_id: str) -> ServiceFactory:
    """``service(partitions=3, sim_args=(), *, broker=None, source_config=None,
    dead_letter_config=None)`` builds a ServiceSetup; everything stops afterwards.

    ``broker`` is a bootstrap address (``own_broker.bootstrap``); without it the
    shared broker is used, asked for only then so an own-broker test starts no other.
    """

    def build(
        partitions: int = 3,
        sim_args: Iterable[str] = (),
        *,
        broker: str | None = None,
        source_config: dict[str, str] | None = None,
        dead_letter_config: dict[str, str] | None = None,
    ) -> ServiceSetup:
        if broker is None:
            bootstrap: str = request.getfixturevalue("kafka_bootstrap")
            topics: NewTopicFactory = request.getfixturevalue("new_topic")
        else:  # the test's own broker: it goes with the test, so nothing is deleted
            bootstrap, topics = broker, TopicMaker(broker, f"test-{_name_fragment(request)}")
        setup = make_setup(
            tmp_path,
            bootstrap,
            topics,
            unique_group_id,
            partitions=partitions,
            sim_args=sim_args,
            source_config=source_config,
            dead_letter_config=dead_letter_config,
        )
        # Registered after new_topic was set up, so it runs before new_topic's teardown
        # (finalizers run last in, first out): the bridges stop before their topics are
        # deleted. Closing after the yield ran too late: a bridge whose topic was deleted
        # under it could take over a minute to stop.
        request.addfinalizer(setup.close)
        return setup

    return build


# =========================================================================== Configuration files


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write HEADER (unless told otherwise) plus ``rules`` text; return the file's path."""

    def write(rules: str, *, header: str = HEADER, name: str = "bridge.yaml") -> Path:
        path = tmp_path / name
        path.write_text(header + textwrap.dedent(rules), encoding="utf-8")
        return path

    return write


# =========================================================================== Schemas


@pytest.fixture(scope="session")
def shipment_schema() -> AvroSchema:
    return load_avro_schema(SCHEMAS / "shipment_event.avsc")


@pytest.fixture(scope="session")
def order_schema() -> AvroSchema:
    return load_avro_schema(SCHEMAS / "order_event.avsc")


@pytest.fixture
def shipment_example() -> dict[str, Any]:
    """The JSON-friendly shipment record (what the avro decoder gives), fresh per test."""
    value: dict[str, Any] = json.loads((SCHEMAS / "examples" / "shipment_event.json").read_text())
    return value


@pytest.fixture
def order_example() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((SCHEMAS / "examples" / "order_event.json").read_text())
    return value


@pytest.fixture
def schema_registry() -> Iterator[TestSchemaRegistry]:
    """A fresh Confluent-compatible test registry on 127.0.0.1 (real HTTP)."""
    with running_schema_registry() as registry:
        yield registry
