"""Delivery receipts against the real broker and simulator: the stream is complete.

Transient failures (500s, 503s, dropped connections) make events take several
attempts, and a SIGKILL in the middle loses whatever was in flight; after a
restart every event Vibes accepted has a receipt (at least once), the distinct
receipts are exactly the accepted events, and every offset is committed.

Until the kill the receipts topic cannot take a record (its ``max.message.bytes``
is lowered under the running bridge, so the broker refuses every receipt), so
every receipt waits unacknowledged; a bridge that committed an accepted event's
offset before its receipt was acknowledged would lose those receipts for good
(the check that this test fails without the guarantee). The topic is repaired
before the restart.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # not re-exported in its stubs
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from tests.support.bridge_service import default_event_id, run_to_exit
from tests.support.kafka import committed_offsets, end_offset, produce, read_all
from tests.support.service import ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def with_receipts(config: Path, topic: str) -> Path:
    """Append a receipts: section (top-level key order does not matter in YAML)."""
    config.write_text(config.read_text() + f"receipts:\n  topic: {topic}\n")
    return config


def test_every_accepted_event_has_a_receipt_after_transient_failures_and_a_sigkill(
    service: Callable[..., ServiceSetup], kafka_admin: AdminClient
) -> None:
    total = 600
    setup = service(partitions=2, sim_args=("--latency-ms", "2", "--latency-jitter-ms", "6"))
    receipts_topic = setup.new_topic(2)
    setup.control.faults(error_rate=0.15, error_500_rate=0.1, drop_rate=0.05)
    config = with_receipts(setup.config(), receipts_topic)
    bridge = setup.start(config)  # sized for the topic as it is now
    _set_limit(kafka_admin, receipts_topic, "64")  # then it takes no receipt at all
    produce(setup.bootstrap, setup.topic, orders(total, keys=30))
    wait_until(lambda: setup.control.stats()["sent"] >= 200, 90, "progress before the kill")
    wait_until(
        lambda: "receipts cannot be written" in bridge.get("/readyz").json()["problems"],
        30,
        "readiness names the receipts",
    )
    assert max(committed_offsets(setup.bootstrap, setup.group, setup.topic, 2)) < 0
    bridge.stop(signal.SIGKILL)
    _set_limit(kafka_admin, receipts_topic, "1048588")
    bridge = setup.start(config)
    wait_until(lambda: setup.control.stats()["sent"] == total, 120, "every event sent")
    wait_until(
        lambda: sum(committed_offsets(setup.bootstrap, setup.group, setup.topic, 2)) == total,
        60,
        "every offset committed",
    )
    written = end_offset(setup.bootstrap, receipts_topic, 0) + end_offset(
        setup.bootstrap, receipts_topic, 1
    )
    assert written >= total
    receipts = [orjson.loads(m.value()) for m in read_all(setup.bootstrap, receipts_topic, written)]
    accepted = {e["event_id"] for e in setup.control.events() if e["outcome"] == "sent"}
    assert len(accepted) == total
    assert {receipt["event_id"] for receipt in receipts} == accepted
    for receipt in receipts:
        source = receipt["source"]
        assert receipt["event_id"] == default_event_id(
            "order-update", setup.topic, source["partition"], source["offset"]
        )
        assert receipt["company_key"] == "demo"
        assert receipt["rule"] == "order-update"
        assert receipt["event_type"] == "order_update"
        assert receipt["status"] in (200, 202, 409)  # 409: accepted before the kill
        assert source["topic"] == setup.topic
        assert source["timestamp_ms"] > 0
        assert receipt["first_attempt_ms"] <= receipt["accepted_ms"]
    assert any(receipt["attempts"] > 1 for receipt in receipts)  # the failures were retried
    assert bridge.metric("vibes_bridge_receipts_total") >= 1
    assert bridge.stop() == 0


def _set_limit(admin: AdminClient, topic: str, limit: str) -> None:
    """The topic's ``max.message.bytes``, changed under a running bridge."""
    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", limit, incremental_operation=AlterConfigOpType.SET)
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_a_receipts_topic_too_small_for_a_receipt_is_refused_at_start(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    receipts_topic = setup.new_topic(1, {"max.message.bytes": "1500"})
    produce(setup.bootstrap, setup.topic, orders(3))
    result = run_to_exit(with_receipts(setup.config(), receipts_topic))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    [line] = [line for line in output.splitlines() if "receipts.topic" in line]
    assert receipts_topic in line
    assert "max.message.bytes" in line
    assert "Traceback" not in output
    assert committed_offsets(setup.bootstrap, setup.group, setup.topic, 1) == [-1001]
