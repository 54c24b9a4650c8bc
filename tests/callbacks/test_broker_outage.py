"""The broker stops while callbacks arrive: 503s, Vibes retries, and nothing is lost.

This test needs a broker it may stop, so it starts its own (devtools'
``start_local_broker``) instead of the shared one, stops its JVM with
``pause_local_broker`` and starts it again on the same ports and data with
``resume_local_broker``.

The topic is at-least-once: a record the broker had already read from its socket
when the receiver gave up may still be written, beside Vibes' retry. So the
check is that every callback id is on the topic, not that each is there once.
"""

from __future__ import annotations

import pytest

from devtools.kafka_broker import (
    BrokerHandle,
    pause_local_broker,
    resume_local_broker,
)
from tests.callbacks.support import (
    SimCallbacks,
    acknowledged,
    callbacks_cli,
    headers_of,
    receiver_url,
    with_callbacks,
)
from tests.support.kafka import end_offset, produce, read_all
from tests.support.service import ServiceFactory, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 20


def test_callbacks_during_a_broker_stop_are_all_stored_after_it_returns(
    own_broker: BrokerHandle, service: ServiceFactory
) -> None:
    bootstrap = own_broker.bootstrap
    setup = service(partitions=1, broker=bootstrap)
    callbacks_topic = setup.new_topic()
    sim = SimCallbacks(setup.sim.url)
    try:
        # The first callback leaves 5 s after its event was accepted, far longer than
        # the poll between "all events accepted" and the freeze; retries every second.
        sim.configure(delay_s=5, retry_s=1.0, max_attempts=100)
        config = with_callbacks(setup.config(), callbacks_topic)
        bridge = setup.start(config)
        assert (
            callbacks_cli("register", "-c", str(config), "--url", receiver_url(bridge)).returncode
            == 0
        )
        produce(bootstrap, setup.topic, orders(EVENTS))
        wait_until(lambda: setup.control.stats()["sent"] == EVENTS, 60, "the events delivered")
        # Events are delivered; their callbacks are about to leave: stop the broker now.
        pause_local_broker(own_broker)
        try:
            wait_until(
                lambda: (
                    any(entry["answer"] == 503 for entry in sim.sent()["deliveries"])
                    or bridge.metric("vibes_bridge_callback_requests_total", answer="unavailable")
                    > 0
                ),
                60,
                "a 503 while the broker is down",
            )
            wait_until(
                lambda: (
                    bridge.metric("vibes_bridge_callback_requests_total", answer="unavailable") >= 3
                ),
                60,
                "several refused attempts",
            )
        finally:
            resume_local_broker(own_broker)

        def all_acknowledged() -> bool:
            stats = sim.sent()["stats"]
            return bool(
                stats["callbacks"] == 2 * EVENTS and stats["acknowledged"] == stats["callbacks"]
            )

        wait_until(all_acknowledged, 120, "every callback acknowledged after the broker returned")
        sent = sim.sent()
        assert any(entry["answer"] == 503 for entry in sent["deliveries"])
        wanted = {entry["callback_id"] for entry in acknowledged(sent["deliveries"])}
        on_topic = end_offset(bootstrap, callbacks_topic)  # duplicates included
        stored = read_all(bootstrap, callbacks_topic, on_topic, timeout=60)
        assert len(stored) == on_topic
        assert wanted <= {headers_of(message)["vibes.callback.id"] for message in stored}
    finally:
        sim.close()
