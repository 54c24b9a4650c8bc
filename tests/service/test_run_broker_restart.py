"""A broker restart mid-run: the bridge reconnects by itself and loses nothing.

This test needs a broker of its own (it stops and restarts it), so it starts one
from the project's Apache Kafka jars instead of using the shared session broker.
"""

from __future__ import annotations

import socket

import pytest

from devtools.kafka_broker import (
    BrokerHandle,
    pause_local_broker,
    resume_local_broker,
)
from tests.support.bridge_service import BridgeProcess
from tests.support.kafka import produce
from tests.support.service import ServiceFactory, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
TOTAL = 1500


def _port_closed(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, int(port))) != 0


def _lost_partitions(bridge: BridgeProcess) -> bool:
    return any(line.get("message") == "partitions lost" for line in bridge.log_lines())


@pytest.mark.parametrize("outage", ["short", "past_the_session_timeout"])
def test_broker_restart_mid_run_loses_nothing(
    own_broker: BrokerHandle, service: ServiceFactory, outage: str
) -> None:
    """A short outage, and one longer than the session timeout: the member loses its
    partitions, must rejoin when the broker is back and deliver the rest."""
    bootstrap = own_broker.bootstrap
    setup = service(partitions=3, sim_args=("--latency-ms", "5"), broker=bootstrap)
    control = setup.control
    produce(bootstrap, setup.topic, orders(TOTAL, keys=30))
    rules = (
        "rules:\n  - name: order-update\n"
        f"    topic: {setup.topic}\n    event_type: order_update\n"
        "    recipient: {external_person_id: customer_id}\n    event_data: {seq: seq}\n"
    )
    bridge = setup.start(setup.config(rules=rules))
    wait_until(lambda: control.stats()["sent"] >= 300, 60, "progress before the restart")
    pause_local_broker(own_broker)
    wait_until(lambda: _port_closed(bootstrap), 30, "the broker to be down")
    if outage == "past_the_session_timeout":  # 10 s in service_config
        wait_until(lambda: _lost_partitions(bridge), 60, "the session to time out")
    assert bridge.running
    resume_local_broker(own_broker)
    wait_until(lambda: control.stats()["sent"] == TOTAL, 180, "every event sent")
    assert bridge.running
    assert control.stats()["sent"] == TOTAL
    assert bridge.metric("vibes_bridge_dead_letters_total") == 0
    assert bridge.stop() == 0
