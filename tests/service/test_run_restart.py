"""A key stuck in retries neither stops the bridge nor makes a crash re-send what finished after it.

Against the real broker and simulator: the simulator fails chosen events with 503
(``/_sim/failing``) while every other key flows past a small ``max_pending_records``;
then the bridge is killed, the stuck key healed, and a new bridge must skip the
records finished past the committed position and redo only the unfinished ones.
No fixed sleeps: every wait is a bounded poll of a condition.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from bridge.service.commit_metadata import decode
from tests.support.kafka import produce
from tests.support.service import ServiceSetup
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PER_PARTITION = 1500
# Three events of one stuck customer in each partition: six in all, as in the issue.
STUCK = {0: (10, 20, 30), 1: (5, 15, 25)}
RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    event_id: {{template: "{{customer_id}}-{{seq}}"}}
    recipient:
      external_person_id: customer_id
    event_data:
      seq: seq
"""


def _records(partition: int) -> list[tuple[bytes, dict[str, Any]]]:
    records = []
    for offset in range(PER_PARTITION):
        customer = f"stuck-{partition}" if offset in STUCK[partition] else f"c-{offset % 20}"
        seq = partition * PER_PARTITION + offset
        records.append((customer.encode(), {"customer_id": customer, "seq": seq}))
    return records


def _committed(setup: ServiceSetup) -> dict[int, tuple[int, str]]:
    """The group's committed offset and metadata per partition, as a plain consumer reads them."""
    consumer = Consumer({"bootstrap.servers": setup.bootstrap, "group.id": setup.group})
    try:
        found = consumer.committed([TopicPartition(setup.topic, p) for p in STUCK], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: (tp.offset, tp.metadata or "") for tp in found}


def _listed(offset: int, metadata: str) -> int:
    return sum(end - start for start, end in decode(metadata, offset))


def test_a_restart_after_a_kill_with_a_stuck_key_skips_finished_records_and_redoes_the_stuck(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=2)
    for partition in STUCK:
        produce(setup.bootstrap, setup.topic, _records(partition), partition=partition)
    total = 2 * PER_PARTITION
    stuck_ids = {
        f"stuck-{p}-{p * PER_PARTITION + offset}" for p, offs in STUCK.items() for offset in offs
    }
    setup.control.fail_events("^stuck-")
    config = setup.config(
        rules=RULES.format(topic=setup.topic), delivery="max_pending_records: 50\n"
    )
    first = setup.start(config)
    # Everything but the six flows past a bound of 50: finished records behind the
    # stuck ones no longer count against it (before, delivery stopped near 50).
    wait_until(lambda: setup.control.stats()["sent"] == total - 6, 120, "all but the stuck sent")
    # The committed position waits at each partition's first stuck record, and the
    # commit's metadata lists every record past it but the stuck ones as finished.
    expected = {p: (offs[0], PER_PARTITION - offs[0] - len(offs)) for p, offs in STUCK.items()}
    wait_until(
        lambda: {p: (o, _listed(o, m)) for p, (o, m) in _committed(setup).items()} == expected,
        30,
        "a commit listing the finished records",
    )
    assert setup.control.stats()["faults_targeted"] >= 6  # they were tried, and failed
    first.stop(signal.SIGKILL)

    setup.control.stop_failing()
    second = setup.start(config)
    wait_until(lambda: setup.control.stats()["sent"] == total, 120, "the stuck ones sent")
    stats = setup.control.stats()
    # Nothing finished was sent again: at the kill only the stuck events were in
    # flight, and nothing had finished since the last commit.
    assert stats["duplicates"] == 0
    sent = [e["event_id"] for e in setup.control.events() if e["outcome"] == "sent"]
    assert len(sent) == len(set(sent)) == total
    assert stuck_ids <= set(sent[-6:])  # the unfinished ones were redone, after the restart
    skipped = sum(finished for _offset, finished in expected.values())
    wait_until(
        lambda: second.metric("vibes_bridge_records_skipped_finished_total") == skipped,
        30,
        "the skip counted",
    )
    assert second.metric("vibes_bridge_records_consumed_total") == 6
    wait_until(
        lambda: _committed(setup) == dict.fromkeys(STUCK, (PER_PARTITION, "")),
        30,
        "everything committed, nothing left listed",
    )
    assert second.stop() == 0
