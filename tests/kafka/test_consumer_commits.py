"""Against the real broker: the consumer's commits carry their metadata, and a refused text
falls back to offsets alone instead of failing every commit."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bridge.kafka.config import ConfigValue
from bridge.kafka.consumer import KafkaSource
from bridge.records import Partition, Position
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka


class Assignments:
    """The rebalance listener: remembers what the group gave."""

    def __init__(self) -> None:
        self.assigned: list[Partition] = []

    def partitions_assigned(self, partitions: list[Partition]) -> None:
        self.assigned.extend(partitions)

    def partitions_revoked(self, partitions: list[Partition]) -> None:
        pass

    def partitions_lost(self, partitions: list[Partition]) -> None:
        pass


@pytest.fixture
def source(
    kafka_bootstrap: str, new_topic: Callable[..., str], unique_group_id: str
) -> Iterator[tuple[KafkaSource, Partition]]:
    topic = new_topic(1)
    listener = Assignments()
    settings: dict[str, ConfigValue] = {
        "bootstrap.servers": kafka_bootstrap,
        "group.id": unique_group_id,
        "enable.auto.commit": False,
        "session.timeout.ms": 10000,
    }
    consumer = KafkaSource(settings, [topic], listener)
    try:
        wait_until(lambda: bool(consumer.fetch(1, 0.2) or listener.assigned), 30, "an assignment")
        yield consumer, (topic, 0)
    finally:
        consumer.close()


def test_a_commit_keeps_its_metadata_and_an_empty_one_clears_it(
    source: tuple[KafkaSource, Partition],
) -> None:
    consumer, partition = source
    assert consumer.commit({partition: Position(5, "vb1:5:1+3")})
    assert consumer.committed([partition], 10) == {partition: Position(5, "vb1:5:1+3")}
    assert consumer.commit({partition: Position(9)})
    assert consumer.committed([partition], 10) == {partition: Position(9, "")}


def test_metadata_the_broker_refuses_is_dropped_and_the_offset_still_committed(
    source: tuple[KafkaSource, Partition], caplog: pytest.LogCaptureFixture
) -> None:
    consumer, partition = source
    too_long = "vb1:7:" + ",".join(["1+1"] * 2000)  # past offset.metadata.max.bytes (4096)
    assert consumer.commit({partition: Position(7, too_long)})
    assert consumer.committed([partition], 10) == {partition: Position(7, "")}
    # From then on offsets alone, without asking again: one warning in all.
    assert consumer.commit({partition: Position(8, "vb1:8:1+1")})
    assert consumer.committed([partition], 10) == {partition: Position(8, "")}
    warnings = [r for r in caplog.records if "metadata" in r.getMessage()]
    assert len(warnings) == 1
