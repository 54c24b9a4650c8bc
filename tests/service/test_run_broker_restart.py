"""A broker restart mid-run: the bridge reconnects by itself and loses nothing.

This test needs a broker of its own (it stops and restarts it), so it starts one
from the project's Apache Kafka jars instead of using the shared session broker.
"""

from __future__ import annotations

import socket
import time

import pytest

from devtools.kafka_broker import (
    BrokerHandle,
    pause_local_broker,
    resume_local_broker,
)
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


# Longer than the session timeout service_config sets (10 s): the group expires the
# member, which must join again once the broker is back. The outage's length is the
# scenario, not a synchronisation: the test waits for the broker to be down first.
LONG_OUTAGE_S = 14.0


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
    # The long outage with a small pending bound: commits fail while the broker is down,
    # so the bound fills and the consumer pauses before its partitions are lost; partitions
    # assigned again must be fetched again (librdkafka keeps their pause flag).
    delivery = "max_pending_records: 50\n" if outage == "past_the_session_timeout" else ""
    bridge = setup.start(setup.config(rules=rules, delivery=delivery))
    wait_until(lambda: control.stats()["sent"] >= 300, 60, "progress before the restart")
    pause_local_broker(own_broker)
    wait_until(lambda: _port_closed(bootstrap), 30, "the broker to be down")
    if outage == "past_the_session_timeout":
        down_since = time.monotonic()
        wait_until(
            lambda: time.monotonic() - down_since >= LONG_OUTAGE_S,
            LONG_OUTAGE_S + 5,
            "an outage longer than the session timeout",
        )
    assert bridge.running
    resume_local_broker(own_broker)
    wait_until(lambda: control.stats()["sent"] == TOTAL, 180, "every event sent")
    assert bridge.running
    assert control.stats()["sent"] == TOTAL
    assert bridge.metric("vibes_bridge_dead_letters_total") == 0
    assert bridge.stop() == 0
