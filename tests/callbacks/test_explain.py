"""``vibes-bridge explain`` as a subprocess, against the real broker and the simulator's callbacks.

One run of the bridge with receipts and the callback receiver: ordinary orders go
to the demo account (accepted; the simulator then calls back, with a share of
routing failures), VIP orders also to an account the simulator does not serve
(404: dead-lettered). Then explain tells four stories: a delivered event queued to
the carrier, one whose routing callback said "not subscribed", a dead-lettered one
(asked by source topic and key), and one that was never seen.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from tests.callbacks.support import SimCallbacks, callbacks_cli, receiver_url, with_callbacks
from tests.service.test_run_receipts import with_receipts
from tests.support.bridge_service import default_event_id
from tests.support.kafka import produce
from tests.support.paths import ROOT
from tests.support.service import ServiceSetup
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORDERS = 40
VIPS = 2
RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{order_id: order_id}}
  - name: vip-update
    topic: {topic}
    when: "kind == 'vip'"
    company_key: other
    event_type: vip_update
    recipient: {{external_person_id: customer_id}}
    event_data: {{order_id: order_id}}
"""


def _orders() -> list[tuple[bytes, dict[str, Any]]]:
    """Keyed by order id, as an operator would ask; customers' ids are person data."""
    return [
        (
            f"o-{number}".encode(),
            {
                "kind": "vip" if number < VIPS else "order",
                "order_id": f"o-{number}",
                "customer_id": f"customer-secret-{number}",
            },
        )
        for number in range(ORDERS)
    ]


def explain(config: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "explain", "-c", str(config), "--since", "1h", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _story(config: Any, *args: str) -> dict[str, Any]:
    done = explain(config, "--json", *args)
    assert done.returncode == 0, done.stderr
    story: dict[str, Any] = orjson.loads(done.stdout)
    assert story["complete"]
    return story


def _steps(event: dict[str, Any]) -> list[str]:
    return [step["step"] for step in event["steps"]]


def test_explain_tells_the_story_of_delivered_dead_lettered_unsubscribed_and_unseen_events(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    callbacks_topic = setup.new_topic(1)
    receipts_topic = setup.new_topic(1)
    sim = SimCallbacks(setup.sim.url)
    try:
        sim.configure(retry_s=0.2, routing_failure_rate=0.6)
        config = with_receipts(
            with_callbacks(setup.config(rules=RULES.format(topic=setup.topic)), callbacks_topic),
            receipts_topic,
        )
        bridge = setup.start(config)
        registered = callbacks_cli("register", "-c", str(config), "--url", receiver_url(bridge))
        assert registered.returncode == 0, registered.stderr
        produce(setup.bootstrap, setup.topic, _orders())
        wait_until(
            lambda: bridge.metric("vibes_bridge_records_committed_total") == ORDERS,
            90,
            "every record finished and committed",
        )

        def all_called_back() -> bool:
            stats = sim.sent()["stats"]
            called = {entry["event_id"] for entry in sim.sent()["deliveries"]}
            return len(called) == ORDERS and stats["acknowledged"] == stats["callbacks"]

        wait_until(all_called_back, 90, "a callback for every accepted event")
        deliveries = sim.sent()["deliveries"]
    finally:
        sim.close()

    # Delivered and queued to the carrier.
    queued = next(e for e in deliveries if e["status_reason"] == "sms_queued_to_carrier")
    story = _story(config, "--event-id", queued["event_id"])
    [event] = story["events"]
    assert _steps(event) == ["record", "mapped", "accepted", "callback", "callback"]
    assert event["event_id"] == queued["event_id"]
    record, mapped, accepted, routed, processed = event["steps"]
    assert record["topic"] == setup.topic
    assert mapped == {
        "step": "mapped",
        "at": None,
        "rule": "order-update",
        "event_type": "order_update",
    }
    assert (accepted["status"], accepted["attempts"]) == (200, 1)
    assert routed["meaning"] == "routed to an event-triggered message"
    assert processed["meaning"] == "queued to carrier"
    assert "customer-secret" not in orjson.dumps(story).decode()  # person data hidden
    assert story["read"]["receipts"]["records"] == ORDERS
    shown = explain(config, "--json", "--show-person-data", "--event-id", queued["event_id"])
    assert "customer-secret" in shown.stdout  # only when asked for

    # The routing callback said "not subscribed"; the text form says so in words.
    unsubscribed = next(e for e in deliveries if e["status_reason"] == "person_not_subscribed")
    text = explain(config, "--event-id", unsubscribed["event_id"])
    assert text.returncode == 0, text.stderr
    assert "accepted by Vibes (HTTP 200) after 1 attempt(s)" in text.stdout
    assert "routing failed person_not_subscribed: not subscribed" in text.stdout
    assert "customer-secret" not in text.stdout

    # A VIP order, asked by source topic and key: one event accepted, one dead-lettered.
    story = _story(config, "--topic", setup.topic, "--key", "o-1")
    by_rule = {event["rule"]: event for event in story["events"]}
    assert set(by_rule) == {"order-update", "vip-update"}
    rejected = by_rule["vip-update"]
    assert rejected["event_id"] == default_event_id("vip-update", setup.topic, 0, 1)
    assert _steps(rejected) == ["record", "mapped", "dead_lettered"]
    letter = rejected["steps"][2]
    assert (letter["reason"], letter["status"], letter["attempts"]) == ("rejected", 404, 1)
    assert letter["response"].startswith("(hidden")
    assert _steps(by_rule["order-update"])[:3] == ["record", "mapped", "accepted"]
    assert "callback" in _steps(by_rule["order-update"])

    # Never seen: exit 1, and how much was read.
    unseen = explain(config, "--event-id", "never-seen-0")
    assert unseen.returncode == 1, unseen.stderr
    assert "event never-seen-0: not seen between" in unseen.stdout
    assert f"{ORDERS} receipts ({receipts_topic})" in unseen.stdout
    assert "to the window's end" in unseen.stdout
    assert bridge.stop() == 0
