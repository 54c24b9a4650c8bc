"""A stuck record is visible: lag series from assignment, and the oldest unfinished age grows.

`vibes-bridge run` against the real broker, with Vibes replaced by a hostile
server that never finishes an answer, so the first records can never finish
and nothing is ever committed by the bridge.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.bridge_service import BridgeProcess, service_config
from tests.support.hostile_http import Misbehaviour, hostile_server
from tests.support.kafka import committed_offsets, produce
from tests.support.service import ORDER_RULES, ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

LAG = "vibes_bridge_consumer_lag"
AGE = "vibes_bridge_oldest_unfinished_record_age_seconds"


def _series(bridge: BridgeProcess, name: str, topic: str) -> dict[int, float]:
    """Each partition's sample of ``name`` for ``topic``, as exported now (absent: not there)."""
    samples: dict[int, float] = {}
    pattern = re.compile(rf'^{name}\{{partition="(\d+)",topic="{re.escape(topic)}"\}} (\S+)$')
    for line in bridge.get("/metrics").text.splitlines():
        match = pattern.match(line)
        if match:
            samples[int(match.group(1))] = float(match.group(2))
    return samples


def _commit_for_group(bootstrap: str, group: str, topic: str, partitions: int) -> None:
    """A previous owner's commits at 0: the lag is known before the bridge commits."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = [TopicPartition(topic, number, 0) for number in range(partitions)]
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@pytest.mark.parametrize("precommitted", [True, False])
def test_a_stuck_record_shows_lag_and_a_growing_age(
    service: Callable[..., ServiceSetup], precommitted: bool
) -> None:
    setup = service(partitions=2)
    if precommitted:
        _commit_for_group(setup.bootstrap, setup.group, setup.topic, 2)
    produce(setup.bootstrap, setup.topic, orders(3), partition=0)
    with hostile_server(Misbehaviour.TRICKLE_HEADERS) as vibes:
        config = service_config(
            setup.tmp_path / "stuck.yaml",
            bootstrap=setup.bootstrap,
            sim_url=vibes.url,
            group=setup.group,
            dead_letter_topic=setup.dead_letter_topic,
            sources=[setup.topic],
            rules=ORDER_RULES.format(topic=setup.topic),
        )
        bridge = setup.start(config)
        expected = {0: 3.0, 1: 0.0} if precommitted else {0: 3.0}
        wait_until(lambda: _series(bridge, LAG, setup.topic) == expected, 60, "lag series")
        wait_until(lambda: _series(bridge, AGE, setup.topic).get(0, 0.0) > 0, 30, "an age")
        first = _series(bridge, AGE, setup.topic)[0]
        wait_until(lambda: _series(bridge, AGE, setup.topic)[0] > first, 30, "the age to grow")
        assert _series(bridge, AGE, setup.topic).get(1, 0.0) == 0.0
        assert bridge.metric("vibes_bridge_delivery_retries_total", reason="timeout") >= 1
        bridge.stop()
    start = 0 if precommitted else -1001
    assert committed_offsets(setup.bootstrap, setup.group, setup.topic, 2) == [start, start]
