"""Isolation (issue 17 item 2): company B's rate while company A fails, against B's rate alone.

Two company keys, ``acme`` (A) and ``demo`` (B), their records interleaved one to
one on the same partitions and the same customer keys, each key limited to
``--rate`` requests per second. A run starts ``vibes-bridge run`` (a real
subprocess, the real broker) against ``vibes-bridge sim``; once 10 % of A's
events are sent, A fails for ``--outage`` seconds (60 by default): its
credentials are rejected (``credentials``), its endpoint answers 503
(``unavailable``), or it is held by 429s (``held``); then it recovers. The
``alone`` run has no failure.

Printed per scenario: B's rate during the outage window divided by B's rate in
the ``alone`` run over the same window, and whether A's events were all sent
exactly once after the recovery (lost / doubled counts) with per-key order kept.
The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else one started for the run.
Each run parks on a parked topic of its own (docs/isolation.md, "Parking");
``--no-parking`` measures without it (B stops once A's records fill the pending bound).

    .venv/bin/python -m bench.isolation --outage 60 --rate 100
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from devtools.kafka_broker import kafka_broker
from tests.support.bridge_service import service_config, start_bridge
from tests.support.kafka import produce
from tests.support.service import COMPANY_A as A
from tests.support.service import COMPANY_B as B
from tests.support.service import TWO_COMPANY_RULES as RULES
from tests.support.service import interleaved
from tests.support.simulator import SimControl, start_sim
from tests.support.waiting import poll_until, wait_until

PARTITIONS = 3
LATENCY_MS = 10
OUTAGES = {"credentials": (401, 1.0), "unavailable": (503, 1.0), "held": (429, 1.0)}
SCENARIOS = ("alone", *OUTAGES)


@dataclass(frozen=True)
class Result:
    b_window_rate: float  # B's events per second in the outage window
    a_lost: int
    a_doubled: int
    order_kept: bool


def _new_topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-isolation-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, partitions, replication_factor=1)])[name].result(30)
    return name


def _sent(control: SimControl) -> list[dict[str, Any]]:
    return [e for e in control.events() if e["outcome"] == "sent"]


def _stamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["received_at"]).timestamp()


def run_once(
    scenario: str,
    bootstrap: str,
    admin: AdminClient,
    *,
    rate: float,
    outage: float,
    max_pending: int,
    parking: bool = True,
) -> Result:
    per_company = int(rate * (outage + 30))
    work = Path(tempfile.mkdtemp(prefix=f"isolation-{scenario}-"))
    topic, dead_letters = _new_topic(admin, PARTITIONS), _new_topic(admin, 1)
    parked = _new_topic(admin, PARTITIONS)
    parking_config = f"parking: {{topic: {parked}}}\n" if parking else "parking: {enabled: false}\n"
    produce(bootstrap, topic, interleaved(per_company, keys=200))
    sim = start_sim(
        ("--company-key", f"{B},{A}", "--latency-ms", str(LATENCY_MS), "--max-events", "1000000"),
        work / "sim.log",
    )
    control = SimControl(sim.url)
    config = service_config(
        work / "bridge.yaml",
        bootstrap=bootstrap,
        sim_url=sim.url,
        group=f"bench-{uuid.uuid4().hex[:8]}",
        dead_letter_topic=dead_letters,
        sources=[topic],
        rules=RULES.format(topic=topic),
        vibes=f"username: demo\npassword: demo\nrequests_per_second: {rate}\n",
        delivery=f"max_pending_records: {max_pending}\n{parking_config}",
        fleet="enabled: false\n",
    )
    bridge = start_bridge(config, work / "bridge.log")
    try:
        # stats() is cheap; A's share of what was sent is about half of it
        def sent_total() -> int:
            return control.stats()["sent"]

        assert poll_until(lambda: sent_total() >= per_company // 5, 600, 0.2), "10 % of A"
        started = time.time()
        if scenario in OUTAGES:
            status, retry_after = OUTAGES[scenario]
            control.outage(A, status, retry_after)
        wait_until(lambda: time.time() - started >= outage, outage + 10, "the outage")
        ended = time.time()
        control.outage(A, 0)
        assert poll_until(
            lambda: sent_total() >= 2 * per_company, 2 * per_company / rate + 180, 0.5
        ), "every event sent"
        events = _sent(control)
    finally:
        if bridge.running:
            bridge.stop()
        control.close()
        sim.stop()
    b_in_window = [e for e in events if e["company_key"] == B and started <= _stamp(e) < ended]
    a_events = [e for e in events if e["company_key"] == A]
    a_ids = [e["event_id"] for e in a_events]
    sequences: dict[str, list[int]] = defaultdict(list)
    for event in a_events:
        data = event["body"]["event_data"]
        sequences[data["external_person_id"]].append(data["seq"])
    return Result(
        b_window_rate=len(b_in_window) / (ended - started),
        a_lost=per_company - len(set(a_ids)),
        a_doubled=len(a_ids) - len(set(a_ids)),
        order_kept=all(seq == sorted(seq) for seq in sequences.values()),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=100.0, help="per company key, events/s")
    parser.add_argument("--outage", type=float, default=60.0, help="seconds A fails")
    parser.add_argument(
        "--max-pending", type=int, default=2000, help="delivery.max_pending_records"
    )
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--no-parking", action="store_true", help="delivery.parking off")
    args = parser.parse_args(argv)
    chosen = args.scenario or list(SCENARIOS)
    if "alone" not in chosen:
        chosen.insert(0, "alone")
    with kafka_broker() as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        results = {}
        for scenario in chosen:
            results[scenario] = run_once(
                scenario,
                bootstrap,
                admin,
                rate=args.rate,
                outage=args.outage,
                max_pending=args.max_pending,
                parking=not args.no_parking,
            )
            result = results[scenario]
            ratio = result.b_window_rate / results["alone"].b_window_rate
            print(
                f"{scenario}: B {result.b_window_rate:.1f}/s in the {args.outage:g} s window "
                f"({ratio:.1%} of alone); A lost {result.a_lost}, doubled {result.a_doubled}, "
                f"per-key order {'kept' if result.order_kept else 'BROKEN'}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
