"""`vibes-bridge run` against the real broker and the simulator: the happy path and poison."""

from __future__ import annotations

import signal
from collections.abc import Callable

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from tests.support.bridge_service import metric_sum
from tests.support.kafka import committed_offsets, create_topic, produce, read_all
from tests.support.service import ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_every_record_delivered_once_and_committed(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=3)
    produce(setup.bootstrap, setup.topic, orders(300))
    bridge = setup.start()
    wait_until(lambda: setup.control.stats()["sent"] == 300, 60, "300 events sent")
    wait_until(
        lambda: sum(committed_offsets(setup.bootstrap, setup.group, setup.topic, 3)) == 300,
        30,
        "every offset committed",
    )
    assert bridge.get("/readyz").status_code == 200
    assert bridge.get("/healthz").status_code == 200
    assert bridge.metric("vibes_bridge_records_consumed_total") == 300
    assert bridge.metric("vibes_bridge_events_delivered_total", status="200") == 300
    wait_until(
        lambda: bridge.metric("vibes_bridge_records_committed_total") == 300, 10, "the counter"
    )
    assert bridge.stop(signal.SIGTERM) == 0
    stats = setup.control.stats()
    assert (stats["sent"], stats["duplicates"], stats["rejected"]) == (300, 0, 0)
    bodies = [orjson.loads(orjson.dumps(event["body"])) for event in setup.control.events()]
    assert {body["event_data"]["order_id"] for body in bodies} == {f"o-{n}" for n in range(300)}


def test_poison_records_are_dead_lettered_and_the_rest_flows(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    good = orders(20)
    records: list[tuple[bytes | None, object]] = list(good[:10])
    records.append((b"poison-1", b"\xff not json"))  # undecodable
    records.append((b"poison-2", {"kind": "order", "order_id": "o-x", "seq": 1}))  # no recipient
    records.append((b"skip", {"kind": "ignored"}))  # no rule matches: skipped
    records.extend(good[10:])
    produce(setup.bootstrap, setup.topic, records)
    bridge = setup.start()
    wait_until(lambda: setup.control.stats()["sent"] == 20, 60, "20 events sent")
    letters = read_all(setup.bootstrap, setup.dead_letter_topic, 2)
    assert len(letters) == 2
    by_key = {letter.key(): letter for letter in letters}
    undecodable = dict(by_key[b"poison-1"].headers())
    assert by_key[b"poison-1"].value() == b"\xff not json"
    assert undecodable["bridge.error.reason"] == b"decode_error"
    assert undecodable["bridge.source.topic"] == setup.topic.encode()
    assert undecodable["bridge.source.offset"] == b"10"
    unmappable = dict(by_key[b"poison-2"].headers())
    assert unmappable["bridge.error.reason"] == b"mapping_error"
    assert unmappable["bridge.rule"] == b"order-update"
    assert unmappable["bridge.attempts"] == b"0"
    wait_until(
        lambda: committed_offsets(setup.bootstrap, setup.group, setup.topic, 1) == [23],
        30,
        "the whole partition committed",
    )
    assert bridge.metric("vibes_bridge_dead_letters_total", reason="decode_error") == 1
    assert bridge.metric("vibes_bridge_records_unmatched_total") == 1
    assert bridge.stop() == 0


def test_not_ready_until_the_dead_letter_topic_exists(
    service: Callable[..., ServiceSetup], kafka_admin: AdminClient
) -> None:
    setup = service(partitions=1)
    setup.dead_letter_topic = f"{setup.topic}.missing-dlq"
    bridge = setup.start()
    answer = bridge.get("/readyz")
    assert answer.status_code == 503
    assert "the dead-letter topic does not exist" in answer.json()["problems"]
    assert bridge.get("/healthz").status_code == 200  # alive, just not ready
    create_topic(kafka_admin, setup.dead_letter_topic)
    wait_until(lambda: bridge.get("/readyz").status_code == 200, 60, "ready")
    kafka_admin.delete_topics([setup.dead_letter_topic])


def test_in_flight_work_is_bounded_and_the_consumer_pauses_instead_of_buffering(
    service: Callable[..., ServiceSetup],
) -> None:
    bound = 20
    setup = service(partitions=2, sim_args=("--latency-ms", "100"))
    produce(setup.bootstrap, setup.topic, orders(400, keys=200))
    config = setup.config(delivery=f"max_pending_records: {bound}\nmax_in_flight: 8\n")
    bridge = setup.start(config)
    paused_seen = False
    worst = 0.0

    def sample_until_all_sent() -> bool:
        nonlocal paused_seen, worst
        # Scraped in one request: consumed minus finished is what is in flight.
        text = bridge.get("/metrics").text
        consumed = metric_sum(text, "vibes_bridge_records_consumed_total")
        finished = metric_sum(text, "vibes_bridge_events_delivered_total")
        worst = max(worst, consumed - finished)
        paused_seen = paused_seen or metric_sum(text, "vibes_bridge_consumer_paused") > 0
        assert bridge.running
        return setup.control.stats()["sent"] >= 400

    # Every poll is a sample: the interval is the sampling rate, not a synchronisation.
    wait_until(sample_until_all_sent, 120, "400 events", interval=0.05)
    assert paused_seen
    # The tracker holds at most `bound` records; a batch's events may still be on
    # their way to being counted as delivered when scraped.
    assert worst <= bound + 8
    assert bridge.stop() == 0
