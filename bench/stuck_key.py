"""A key stuck in retries, then a crash: how far delivery gets, and what a restart sends again.

Issue 16 item 4's scenario, one command. A topic of ``--partitions`` partitions is
pre-filled with ``--records`` orders over 500 customers; two customers' first
three orders (six events) are answered 503 by the simulator every time
(``/_sim/failing``) while the rest flows. ``vibes-bridge run`` (defaults of
``delivery``: max_pending_records 2000) runs until everything but the six is
sent, or until nothing more is sent for ``--stall-seconds`` (the bridge stopped).
It is then killed (SIGKILL), the stuck customers are healed, and a new bridge
runs until every event is sent and every offset committed. Reported: events sent
before the kill and when, the re-sent events after the restart (the simulator's
``duplicates``), the records the restart skipped, and how long the restart took
to send everything and to commit everything.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else one started for the run.

    .venv/bin/python -m bench.stuck_key
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from devtools.kafka_broker import kafka_broker
from tests.support.bridge_service import BridgeProcess, service_config, start_bridge
from tests.support.kafka import committed_offsets, produce
from tests.support.simulator import SimControl, start_sim
from tests.support.waiting import wait_until

STUCK_CUSTOMERS = ("stuck-a", "stuck-b")
STUCK_EVENTS_EACH = 3
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


def _records(count: int) -> list[tuple[bytes, dict[str, Any]]]:
    """Orders over 500 customers; the stuck customers' orders come early (records 0 to 5)."""
    stuck = [name for name in STUCK_CUSTOMERS for _ in range(STUCK_EVENTS_EACH)]
    records = []
    for seq in range(count):
        customer = stuck[seq] if seq < len(stuck) else f"c-{seq % 500}"
        records.append((customer.encode(), {"customer_id": customer, "seq": seq}))
    return records


def _progress_until(control: SimControl, target: int, stall_s: float) -> tuple[int, float]:
    """Sent events when ``target`` is reached or nothing moved for ``stall_s``; and when."""
    started = last_change = time.monotonic()
    last = -1
    while True:
        sent = control.stats()["sent"]
        now = time.monotonic()
        if sent != last:
            last, last_change = sent, now
        if sent >= target:
            return sent, now - started
        if now - last_change >= stall_s:
            return sent, last_change - started
        time.sleep(0.2)


def run(bootstrap: str, records: int, partitions: int, stall_s: float) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="stuck-key-"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic, dead_letters = (f"bench-stuck-{uuid.uuid4().hex[:10]}" for _ in range(2))
    for name, count in ((topic, partitions), (dead_letters, 1)):
        admin.create_topics([NewTopic(name, count, replication_factor=1)])[name].result(30)
    produce(bootstrap, topic, _records(records))
    group = f"bench-{uuid.uuid4().hex[:8]}"
    sim = start_sim((), work / "sim.log")
    control = SimControl(sim.url)
    control.fail_events("^stuck-")
    config = service_config(
        work / "bridge.yaml",
        bootstrap=bootstrap,
        sim_url=sim.url,
        group=group,
        dead_letter_topic=dead_letters,
        sources=[topic],
        rules=RULES.format(topic=topic),
        vibes="username: demo\npassword: demo\nrequests_per_second: 100000\n",
        fleet=f"topic: bench-budget-{uuid.uuid4().hex[:8]}\n",
    )
    stuck = len(STUCK_CUSTOMERS) * STUCK_EVENTS_EACH
    bridges: list[BridgeProcess] = []
    try:
        bridges.append(start_bridge(config, work / "bridge-0.log"))
        before_kill, seconds = _progress_until(control, records - stuck, stall_s)
        paused = bridges[0].metric("vibes_bridge_consumer_paused")
        # A second for the last finished records to be committed, as a live bridge would.
        time.sleep(1.5)
        bridges[0].stop(signal.SIGKILL)
        control.stop_failing()
        restarted = time.monotonic()
        bridges.append(start_bridge(config, work / "bridge-1.log"))
        wait_until(lambda: control.stats()["sent"] >= records, 600, "every event sent")
        all_sent = time.monotonic() - restarted
        # Skipping goes on after the last event: done when every offset is committed.
        wait_until(
            lambda: sum(committed_offsets(bootstrap, group, topic, partitions)) == records,
            600,
            "every offset committed",
        )
        all_committed = time.monotonic() - restarted
        stats = control.stats()
        skipped = bridges[1].metric("vibes_bridge_records_skipped_finished_total")
    finally:
        for bridge in bridges:
            if bridge.running:
                bridge.stop()
        control.close()
        sim.stop()
        admin.delete_topics([topic, dead_letters])
    return {
        "sent_before_kill": before_kill,
        "seconds_to_that": seconds,
        "partitions_paused_then": paused,
        "resent_after_restart": stats["duplicates"],
        "skipped_by_restart": skipped,
        "restart_to_all_sent_s": all_sent,
        "restart_to_all_committed_s": all_committed,
        "sent": stats["sent"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--stall-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    with kafka_broker() as bootstrap:
        result = run(bootstrap, args.records, args.partitions, args.stall_seconds)
    for name, value in result.items():
        print(f"{name}: {value:,.1f}" if isinstance(value, float) else f"{name}: {value:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
