"""Fixtures for the service tests: a simulator, a per-test setup, and bridges to start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.bridge_service import (
    BridgeProcess,
    service_config,
    start_bridge,
)
from tests.support.simulator import SimControl, SimProcess, start_sim

NewTopic = Callable[..., str]

# One rule over JSON orders; the default event id (rule|topic|partition|offset)
# is what makes redelivery harmless, so the crash tests rely on it.
ORDER_RULES = """\
rules:
  - name: order-update
    topic: {topic}
    when: "kind != 'ignored'"
    event_type: order_update
    recipient:
      external_person_id: customer_id
    event_data:
      order_id: order_id
      seq: seq
"""


@dataclass
class ServiceSetup:
    """One test's world: topics, group, simulator, and the bridges it started."""

    tmp_path: Path
    bootstrap: str
    topic: str
    dead_letter_topic: str
    group: str
    sim: SimProcess
    control: SimControl
    bridges: list[BridgeProcess] = field(default_factory=list)

    def config(self, name: str = "bridge.yaml", rules: str | None = None, **extra: Any) -> Path:
        return service_config(
            self.tmp_path / name,
            bootstrap=self.bootstrap,
            sim_url=self.sim.url,
            group=self.group,
            dead_letter_topic=self.dead_letter_topic,
            sources=[self.topic],
            rules=rules if rules is not None else ORDER_RULES.format(topic=self.topic),
            **extra,
        )

    def start(self, config: Path | None = None, env: dict[str, str] | None = None) -> BridgeProcess:
        log_path = self.tmp_path / f"bridge-{len(self.bridges)}.log"
        bridge = start_bridge(config or self.config(), log_path, env)
        self.bridges.append(bridge)
        return bridge


def make_setup(
    tmp_path: Path,
    kafka_bootstrap: str,
    new_topic: NewTopic,
    unique_group_id: str,
    *,
    partitions: int = 3,
    sim_args: tuple[str, ...] = (),
) -> ServiceSetup:
    topic = new_topic(partitions)
    dead_letters = new_topic(1)
    sim = start_sim(sim_args, tmp_path / "sim.log")
    return ServiceSetup(
        tmp_path, kafka_bootstrap, topic, dead_letters, unique_group_id, sim, SimControl(sim.url)
    )


@pytest.fixture
def service(
    tmp_path: Path, kafka_bootstrap: str, new_topic: NewTopic, unique_group_id: str
) -> Iterator[Callable[..., ServiceSetup]]:
    """``service(partitions=3, sim_args=())`` builds a setup; everything stops afterwards."""
    made: list[ServiceSetup] = []

    def build(partitions: int = 3, sim_args: tuple[str, ...] = ()) -> ServiceSetup:
        setup = make_setup(
            tmp_path,
            kafka_bootstrap,
            new_topic,
            unique_group_id,
            partitions=partitions,
            sim_args=sim_args,
        )
        made.append(setup)
        return setup

    yield build
    for setup in made:
        for bridge in setup.bridges:
            if bridge.running:
                bridge.stop()
        setup.control.close()
        setup.sim.stop()


def orders(count: int, *, keys: int = 10, start: int = 0) -> list[tuple[bytes, dict[str, Any]]]:
    """``count`` order records over ``keys`` customers, with a per-key sequence number."""
    records = []
    for number in range(start, start + count):
        customer = number % keys
        records.append(
            (
                f"customer-{customer}".encode(),
                {
                    "kind": "order",
                    "order_id": f"o-{number}",
                    "customer_id": f"c-{customer}",
                    "seq": number,
                },
            )
        )
    return records
