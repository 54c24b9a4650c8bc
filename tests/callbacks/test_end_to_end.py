"""End to end: events through the bridge, the simulator calls back, the topic holds them.

The bridge (``vibes-bridge run`` with a callbacks: section) delivers orders to
the simulator; ``vibes-bridge callbacks register`` points the simulator at the
bridge's receiver; the simulator then calls back for every accepted event, with
shares of routing and processing failures. Every attempt the receiver answered
2xx must be on the topic exactly once, keyed and labelled right, and the
bridge's counts by status must match the simulator's.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.callbacks.support import (
    TOKEN,
    SimCallbacks,
    acknowledged,
    body_of,
    by_status,
    callbacks_cli,
    headers_of,
    receiver_url,
    with_callbacks,
)
from tests.support.kafka import end_offset, produce, read_all
from tests.support.service import ServiceFactory, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

EVENTS = 60


def test_every_acknowledged_callback_is_on_the_topic_once_and_counted(
    service: ServiceFactory,
) -> None:
    setup = service(partitions=2)
    callbacks_topic = setup.new_topic(1)
    sim = SimCallbacks(setup.sim.url)
    try:
        sim.configure(retry_s=0.2, routing_failure_rate=0.3, processing_failure_rate=0.2)
        config = with_callbacks(setup.config(), callbacks_topic)
        bridge = setup.start(config)
        registered = callbacks_cli("register", "-c", str(config), "--url", receiver_url(bridge))
        assert registered.returncode == 0, registered.stderr
        produce(setup.bootstrap, setup.topic, orders(EVENTS))

        def all_called_back() -> bool:
            sent = sim.sent()
            stats = sent["stats"]
            events = {entry["event_id"] for entry in sent["deliveries"]}
            return (
                len(events) == EVENTS
                and stats["acknowledged"] + stats["abandoned"] == stats["callbacks"]
            )

        wait_until(all_called_back, 90, "a callback for every event")
        sent = sim.sent()
        answered = acknowledged(sent["deliveries"])
        assert sent["stats"]["abandoned"] == 0
        assert end_offset(setup.bootstrap, callbacks_topic) == len(answered)
        stored = read_all(setup.bootstrap, callbacks_topic, len(answered))
        by_id = {headers_of(message)["vibes.callback.id"]: message for message in stored}
        assert sorted(by_id) == sorted(entry["callback_id"] for entry in answered)
        for entry in answered:
            message = by_id[entry["callback_id"]]
            headers = headers_of(message)
            assert message.key() == entry["event_id"].encode()
            assert headers["vibes.action.status"] == entry["status"]
            assert headers["vibes.action.status_reason"] == entry["status_reason"]
            assert headers["bridge.source.topic"] == setup.topic
            assert body_of(message)["event_processed"]["event_id"] == entry["event_id"]
        counts = by_status(answered)
        assert sum(1 for key in counts if key[1] == "failed") >= 2  # failures were drawn
        bridge_counts: Counter[tuple[str, str, str]] = Counter()
        for action_type, status, reason in counts:
            bridge_counts[(action_type, status, reason)] = int(
                bridge.metric(
                    "vibes_bridge_callbacks_total",
                    action_type=action_type,
                    status=status,
                    status_reason=reason,
                )
            )
        assert bridge_counts == counts
        # Labelled by the rule's declared type, which the runner handed the receiver.
        declared = bridge.metric("vibes_bridge_callbacks_total", event_type="order_update")
        assert declared == len(answered)
        assert TOKEN not in bridge.log_path.read_text()  # the path's secret is never logged
    finally:
        sim.close()
