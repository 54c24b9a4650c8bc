"""One test's service world on a broker: topics, a group, a simulator, bridges to start.

``make_setup`` is the one factory; the ``service`` fixture (tests/support/fixtures.py)
calls it and stops everything afterwards, and a benchmark or a test that owns its
broker may call it directly. ``orders`` and ``ORDER_RULES`` are the records and the
rule most service tests, the replay tests and the benchmarks run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.bridge_service import BridgeProcess, service_config, start_bridge
from tests.support.kafka import NewTopicFactory
from tests.support.simulator import SimControl, SimProcess, start_sim

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
    new_topic: NewTopicFactory  # more topics on the same broker (a callbacks topic, ...)
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

    def close(self) -> None:
        """Stop every bridge still running, then the simulator."""
        for bridge in self.bridges:
            if bridge.running:
                bridge.stop()
        self.control.close()
        self.sim.stop()


ServiceFactory = Callable[..., ServiceSetup]
"""The ``service`` fixture: ``service(partitions=3, sim_args=(), *, broker=None, ...)``."""


def make_setup(
    tmp_path: Path,
    bootstrap: str,
    new_topic: NewTopicFactory,
    group: str,
    *,
    partitions: int = 3,
    sim_args: Iterable[str] = (),
    source_config: dict[str, str] | None = None,
    dead_letter_config: dict[str, str] | None = None,
) -> ServiceSetup:
    """A source topic of ``partitions``, a one-partition dead-letter topic (both made by
    ``new_topic`` on the broker at ``bootstrap``, with optional topic configs) and a
    simulator started with ``sim_args``."""
    topic = new_topic(partitions, source_config)
    dead_letters = new_topic(1, dead_letter_config)
    sim = start_sim(tuple(sim_args), tmp_path / "sim.log")
    control = SimControl(sim.url)
    return ServiceSetup(tmp_path, bootstrap, topic, dead_letters, group, sim, control, new_topic)


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


# Two company keys on the same records (issue 17 isolation): brand "a" goes to acme,
# brand "b" to the default company key demo.
COMPANY_A, COMPANY_B = "acme", "demo"
TWO_COMPANY_RULES = """\
rules:
  - name: to-b
    topic: {topic}
    when: "brand == 'b'"
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq}}
  - name: to-a
    topic: {topic}
    company_key: acme
    when: "brand == 'a'"
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq}}
"""


def interleaved(per_company: int, keys: int = 8) -> list[tuple[bytes, dict[str, Any]]]:
    """Records alternating between the brands, on the same customer keys."""
    records = []
    for number in range(2 * per_company):
        customer = f"customer-{number % keys}"
        brand = "a" if number % 2 else "b"
        value = {"brand": brand, "customer_id": customer, "seq": number}
        records.append((customer.encode(), value))
    return records
