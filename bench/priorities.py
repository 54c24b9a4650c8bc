"""Priorities under the rate limit: a low-priority backlog, then a trickle of high ones.

Issue 17, item 3, one command. Each run pre-fills a ``bulk`` topic with
``--backlog`` low-priority records (``priority: low``) for one company key,
starts ``vibes-bridge run`` (a real subprocess on the real broker) at
``--limit`` requests per second against ``vibes-bridge sim`` (20 ms latency),
waits until the backlog is flowing at the limit, then produces ``--high``
records to an ``urgent`` topic (``priority: high``), one every
``1 / --trickle`` seconds. A high event's delay is the simulator's
``received_at`` minus the time it was produced; the low events' rate while
the trickle runs shows they still progress.

``--baseline`` runs the same with both rules at the default priority, for
comparison. The fleet budget is off (one process; its 2 % start would only add
noise). ``max_in_flight`` is 64; ``max_pending_records`` is ``--max-pending``
(2000, the default): the high records share the consumer's pending bound with
the backlog, so they are fetched only once it is below half again
(docs/delivery.md, Priorities).

    .venv/bin/python -m bench.priorities --runs 3 [--baseline]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from devtools.kafka_broker import kafka_broker
from tests.support.bridge_service import service_config, start_bridge
from tests.support.kafka import produce
from tests.support.service import orders
from tests.support.simulator import SimControl, start_sim
from tests.support.waiting import wait_until

LATENCY_MS = 20
RULES = """\
rules:
  - name: bulk
    topic: {bulk}
    priority: {low}
    event_type: marketing
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq}}
  - name: urgent
    topic: {urgent}
    priority: {high}
    event_type: out_for_delivery
    recipient: {{external_person_id: customer_id}}
    event_data: {{seq: seq, produced_ms: produced_ms}}
"""


@dataclass(frozen=True)
class Result:
    delays: list[float]  # seconds, one per high event
    low_rate_during: float  # low events sent per second while the trickle ran


def _new_topic(admin: AdminClient, partitions: int) -> str:
    name = f"bench-prio-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, partitions, replication_factor=1)])[name].result(30)
    return name


def _trickle(bootstrap: str, topic: str, count: int, per_second: float) -> tuple[float, float]:
    """Produce ``count`` high records, evenly spaced; the window's start and end."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    started = time.time()
    for number in range(count):
        due = started + number / per_second
        time.sleep(max(0.0, due - time.time()))
        value = {"customer_id": f"u-{number}", "seq": number, "produced_ms": time.time() * 1000}
        producer.produce(topic, orjson.dumps(value), key=f"u-{number}".encode())
        producer.poll(0)
    producer.flush(30)
    return started, time.time()


def run_once(
    bootstrap: str,
    admin: AdminClient,
    *,
    limit: float,
    backlog: int,
    high: int,
    trickle: float,
    baseline: bool,
    max_pending: int,
) -> Result:
    work = Path(tempfile.mkdtemp(prefix="priorities-"))
    bulk, urgent, dead_letters = (_new_topic(admin, n) for n in (3, 3, 1))
    produce(bootstrap, bulk, orders(backlog, keys=500))
    sim = start_sim(("--latency-ms", str(LATENCY_MS)), work / "sim.log")
    control = SimControl(sim.url)
    low, top = ("normal", "normal") if baseline else ("low", "high")
    config = service_config(
        work / "bridge.yaml",
        bootstrap=bootstrap,
        sim_url=sim.url,
        group=f"bench-{uuid.uuid4().hex[:8]}",
        dead_letter_topic=dead_letters,
        sources=[bulk, urgent],
        rules=RULES.format(bulk=bulk, urgent=urgent, low=low, high=top),
        vibes=f"username: demo\npassword: demo\nrequests_per_second: {limit}\n",
        delivery=f"max_pending_records: {max_pending}\n",
        fleet="enabled: false\n",
    )
    bridge = start_bridge(config, work / "bridge.log")
    try:
        # The backlog flows at the limit, and a queue of it waits in the bridge.
        wait_until(lambda: control.stats()["sent"] >= limit * 3, 120, "the backlog flowing")
        window = _trickle(bootstrap, urgent, high, trickle)
        wait_until(
            lambda: (
                sum(1 for e in control.events() if e["body"]["event_type"] == "out_for_delivery")
                >= high
            ),
            120,
            "every high event sent",
        )
        events = [e for e in control.events() if e["outcome"] == "sent"]
    finally:
        bridge.stop()
        control.close()
        sim.stop()
    delays = []
    low_during = 0
    for event in events:
        received = datetime.fromisoformat(event["received_at"]).timestamp()
        data = event["body"]["event_data"]
        if "produced_ms" in data:
            delays.append(received - data["produced_ms"] / 1000)
        elif window[0] <= received <= window[1]:
            low_during += 1
    return Result(sorted(delays), low_during / (window[1] - window[0]))


def _quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--limit", type=float, default=300.0)
    parser.add_argument("--backlog", type=int, default=15_000)
    parser.add_argument("--high", type=int, default=100)
    parser.add_argument("--trickle", type=float, default=5.0, help="high records per second")
    parser.add_argument("--baseline", action="store_true", help="both rules at normal priority")
    parser.add_argument("--max-pending", type=int, default=2000, help="max_pending_records")
    args = parser.parse_args(argv)
    with kafka_broker() as bootstrap:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        results = [
            run_once(
                bootstrap,
                admin,
                limit=args.limit,
                backlog=args.backlog,
                high=args.high,
                trickle=args.trickle,
                baseline=args.baseline,
                max_pending=args.max_pending,
            )
            for _ in range(args.runs)
        ]
    kind = "baseline (no priorities)" if args.baseline else "priorities low/high"
    print(
        f"{kind}: limit {args.limit:g}/s, backlog {args.backlog}, "
        f"{args.high} high at {args.trickle:g}/s, max_pending_records {args.max_pending}, "
        f"{args.runs} runs"
    )
    for name, q in (("p50", 0.5), ("p99", 0.99), ("max", 1.0)):
        values = [_quantile(r.delays, q) for r in results]
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  high delay {name}: median {statistics.median(values):.2f} s (runs {shown})")
    rates = [r.low_rate_during for r in results]
    shown = ", ".join(f"{v:.0f}" for v in rates)
    print(f"  low events/s during the trickle: median {statistics.median(rates):.0f} ({shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
