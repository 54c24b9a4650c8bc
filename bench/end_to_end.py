"""End to end: ``vibes-bridge run`` from Kafka to the simulator, against a hand-written consumer.

    .venv/bin/python bench/end_to_end.py --records 20000 --runs 3
    .venv/bin/python bench/end_to_end.py --records 20000 --runs 3 --tracing [--trace-sample-ratio R]

What one invocation does, all on 127.0.0.1:

1. fresh topics (6 partitions) for the example's orders (JSON) and shipments
   (Avro), pre-filled with ``--records`` records in all, half each, built by
   bench/mapping_hot_path.py's workload builders; the broker is
   $KAFKA_BOOTSTRAP_SERVERS, or the project's own one started for the run;
2. per run: a fresh simulator (``--latency-ms 20``, no rate limit), then
   ``vibes-bridge run`` with examples/bridge.yaml pointed at the fresh topics, a
   fresh group and an unlimiting ``requests_per_second``, until the simulator has
   *sent* every expected event (counted by mapping the records beforehand);
   meanwhile the bridge process's CPU time and resident memory are sampled from
   /proc. Then the simulator is reset and bench/naive_consumer.py reads a subset
   (``--naive-records``) of the same records from the start, in its own group;
3. the medians, minimums and maximums over the runs are printed as a table,
   with the goals of issue 7 next to them; topics and processes are removed.

``--receipts on`` runs the bridge with a ``receipts:`` section (a fresh receipts
topic of 6 partitions; docs/receipts.md); ``--receipts alternate`` alternates
runs without and with receipts (off first) and prints a table for each and the
ratio of their median steady CPU per event: the cost of receipts, measured in
one session on a shared machine.

"Steady" figures are taken between 10 % and 90 % of the expected events, which
leaves out the process start, the group join and the tail; "total" figures run
from spawning the process to the last event. The bridge/naive ratio compares the
steady rates. No figure here is asserted anywhere: see docs/performance.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' helpers are not installed with the package

from bench.mapping_hot_path import Workload, order_workload, shipment_workload  # noqa: E402
from bench.sim_throughput import cpu_seconds  # noqa: E402
from bridge.loading import load_bridge  # noqa: E402
from devtools.kafka_broker import kafka_broker  # noqa: E402
from tests.support.bridge_service import BridgeProcess, start_bridge  # noqa: E402
from tests.support.kafka import produce, wait_for_topic  # noqa: E402
from tests.support.otlp import receiver_process  # noqa: E402
from tests.support.simulator import (  # noqa: E402
    SimControl,
    SimProcess,
    start_sim,
)
from tests.support.waiting import wait_until  # noqa: E402

EXAMPLE_CONFIG = REPO / "examples" / "bridge.yaml"
NAIVE_CONSUMER = REPO / "bench" / "naive_consumer.py"
PARTITIONS = 6
SAMPLE_INTERVAL_S = 0.2
STEADY_FROM, STEADY_TO = 0.10, 0.90
GOALS = {  # issue 7, "Speed and cost"
    "events/s": ">= 2,000",
    "bridge/naive": ">= 40",
    "CPU-s per 1,000 events": "<= 0.3",
    "RSS MB": "< 150",
}


@dataclass(frozen=True)
class Topics:
    """The run's fresh topics: one per example source, and the dead-letter topic."""

    orders: str
    shipments: str
    dead_letters: str
    receipts: str

    def all(self) -> list[str]:
        return [self.orders, self.shipments, self.dead_letters, self.receipts]


@dataclass(frozen=True)
class Sample:
    """One look at the run: seconds since spawn, events sent, bridge CPU-s and RSS (MB)."""

    at: float
    sent: int
    cpu: float
    rss_mb: float


@dataclass(frozen=True)
class BridgeFigures:
    """What one run of the bridge measured."""

    steady_events_per_s: float
    total_events_per_s: float
    steady_cpu_per_1000: float
    total_cpu_per_1000: float
    steady_rss_mb: float
    peak_rss_mb: float
    from_first_event_per_s: float  # from the first event sent to the last


# --------------------------------------------------------------------------- set-up


@contextmanager
def broker() -> Iterator[str]:
    """$KAFKA_BOOTSTRAP_SERVERS when set; otherwise the project's broker, stopped afterwards."""
    with kafka_broker() as bootstrap:
        yield bootstrap


@contextmanager
def fresh_topics(bootstrap: str) -> Iterator[Topics]:
    """Create the run's topics and wait for their leaders; delete them on the way out."""
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(
        f"bench.orders.{suffix}",
        f"bench.shipments.{suffix}",
        f"bench.dlq.{suffix}",
        f"bench.receipts.{suffix}",
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = {
        topics.orders: PARTITIONS,
        topics.shipments: PARTITIONS,
        topics.dead_letters: 1,
        topics.receipts: PARTITIONS,
    }
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=count) for name, count in partitions.items()]
    )
    try:
        for future in futures.values():
            future.result(timeout=30)
        for name, count in partitions.items():
            wait_for_topic(admin, name, count)
        yield topics
    finally:
        for future in admin.delete_topics(topics.all(), operation_timeout=10).values():
            with suppress(Exception):  # a topic that was never created has nothing to delete
                future.result(timeout=15)


def write_config(
    path: Path,
    *,
    bootstrap: str,
    topics: Topics,
    sim_url: str,
    group: str,
    delivery: dict[str, int],
    receipts: bool = False,
    tracing: dict[str, Any] | None = None,
) -> Path:
    """examples/bridge.yaml, rules untouched, pointed at this run's topics, group and sim
    (writing receipts when ``receipts``; with ``tracing``, that section added: ``--tracing``)."""
    yaml = YAML(typ="rt")
    document = yaml.load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    renamed = {"shop.orders": topics.orders, "shop.shipments": topics.shipments}
    document["kafka"]["bootstrap_servers"] = bootstrap
    document["kafka"]["group_id"] = group
    document["vibes"]["base_url"] = sim_url
    document["vibes"]["company_key"] = "demo"
    document["vibes"]["username"] = document["vibes"]["password"] = "demo"
    document["vibes"]["requests_per_second"] = 100_000  # the benchmark has no rate limit
    document["dead_letter"]["topic"] = topics.dead_letters
    document["management"] = {"host": "127.0.0.1", "port": 0}
    document.setdefault("delivery", {}).update(delivery)
    if receipts:
        document["receipts"] = {"topic": topics.receipts}
    if tracing is not None:
        document["tracing"] = tracing
    for source in document["sources"]:
        source["topic"] = renamed[source["topic"]]
        if "schema" in source:
            source["schema"] = str((EXAMPLE_CONFIG.parent / source["schema"]).resolve())
    for rule in document["rules"]:
        rule["topic"] = renamed[rule["topic"]]
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(document, stream)
    return path


def prefill(bootstrap: str, topics: Topics, records: int) -> tuple[Workload, Workload]:
    """Half orders, half shipments, produced with their keys (partitioned by key)."""
    workloads = (order_workload(records // 2), shipment_workload(records - records // 2))
    for topic, workload in zip((topics.orders, topics.shipments), workloads, strict=True):
        produce(bootstrap, topic, ((record.key, record.value) for record in workload.records))
    return workloads


def expected_events(config: Path, workloads: Sequence[Workload], topics: Topics) -> int:
    """How many distinct events the records map to: what the simulator must end up *sending*.

    The records are mapped here with the same configuration the bridge loads; their
    event ids must be distinct, or the simulator's "sent" count could never reach it.
    """
    loaded = load_bridge(config)
    event_ids: set[str] = set()
    count = 0
    for topic, workload in zip((topics.orders, topics.shipments), workloads, strict=True):
        decode = loaded.decoders[topic].decode
        for record in workload.records:
            located = dataclasses.replace(record, topic=topic)
            for event in loaded.engine.map(decode(record.value), located).events:
                event_ids.add(event.event_id)
                count += 1
    loaded.close()
    if len(event_ids) != count:
        raise SystemExit(f"the workload repeats event ids ({count - len(event_ids)} repeats)")
    return count


# --------------------------------------------------------------------------- measuring


def resident_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident set (VmRSS, VmHWM) of ``pid`` in MB, from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


def sample(bridge: BridgeProcess, control: SimControl, spawned_at: float) -> Sample:
    pid = bridge.proc.pid
    return Sample(
        at=time.monotonic() - spawned_at,
        sent=control.stats()["sent"],
        cpu=cpu_seconds(pid) or 0.0,
        rss_mb=resident_mb(pid)[0],
    )


def first_at_least(samples: Sequence[Sample], sent: float) -> Sample:
    return next(s for s in samples if s.sent >= sent)


def bridge_figures(samples: Sequence[Sample], expected: int, peak_rss_mb: float) -> BridgeFigures:
    start = first_at_least(samples, STEADY_FROM * expected)
    end = first_at_least(samples, STEADY_TO * expected)
    done = samples[-1]
    steady_events = max(end.sent - start.sent, 1)
    window = [s.rss_mb for s in samples if start.at <= s.at <= end.at]
    first = next(s for s in samples if s.sent > 0)
    return BridgeFigures(
        steady_events_per_s=steady_events / max(end.at - start.at, 1e-9),
        total_events_per_s=expected / done.at,
        steady_cpu_per_1000=(end.cpu - start.cpu) / steady_events * 1000,
        total_cpu_per_1000=done.cpu / expected * 1000,
        steady_rss_mb=statistics.median(window),
        peak_rss_mb=peak_rss_mb,
        from_first_event_per_s=(expected - first.sent) / max(done.at - first.at, 1e-9),
    )


def log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def py_spy(pid: int, output: Path | None) -> Iterator[None]:
    """``py-spy record`` on ``pid`` while the block runs, when ``output`` is given.

    The format follows the file name: ``.svg`` a flame graph, ``.json`` speedscope,
    anything else py-spy's "raw" collapsed stacks (one line per stack, for grep and
    sort). py-spy is not a dependency: ``.venv/bin/pip install py-spy``.
    """
    if output is None:
        yield
        return
    formats = {".svg": "flamegraph", ".json": "speedscope"}
    command = ["py-spy", "record", "--pid", str(pid), "--output", str(output), "--nonblocking"]
    command += ["--format", formats.get(output.suffix, "raw"), "--rate", "200"]
    profiler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, errors = profiler.communicate(timeout=60)
        if not output.exists():
            print(f"py-spy wrote no profile: {errors.decode(errors='replace')[-500:]}")


def run_bridge(
    config: Path,
    control: SimControl,
    expected: int,
    log_path: Path,
    profile: Path | None = None,
) -> BridgeFigures:
    """Start the bridge, sample until every expected event was sent, stop it (must exit 0)."""
    spawned_at = time.monotonic()
    bridge = start_bridge(config, log_path)
    samples: list[Sample] = []
    try:

        def all_sent() -> bool:
            if not bridge.running:
                raise SystemExit(f"the bridge exited early:\n{log_tail(log_path)}")
            samples.append(sample(bridge, control, spawned_at))
            time.sleep(SAMPLE_INTERVAL_S)
            return samples[-1].sent >= expected

        with py_spy(bridge.proc.pid, profile):
            wait_until(all_sent, 120 + expected / 100, f"{expected} events sent")
        peak_rss_mb = resident_mb(bridge.proc.pid)[1]
    finally:
        status = bridge.stop()
    stats = control.stats()
    if status != 0 or stats["sent"] != expected or stats["duplicates"] != 0:
        raise SystemExit(f"bad run: exit {status}, simulator {stats}\n{log_tail(log_path)}")
    return bridge_figures(samples, expected, peak_rss_mb)


def run_naive(config: Path, sim: SimProcess, records: int) -> dict[str, Any]:
    """bench/naive_consumer.py over the first ``records`` records, on an emptied simulator."""
    httpx.post(f"{sim.url}/_sim/reset", timeout=10).raise_for_status()
    command = [sys.executable, str(NAIVE_CONSUMER), "-c", str(config)]
    command += ["--group", f"bench-naive-{uuid.uuid4().hex[:10]}", "--records", str(records)]
    finished = subprocess.run(
        command, check=False, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    if finished.returncode != 0:
        raise SystemExit(f"the naive consumer failed:\n{finished.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.splitlines()[-1])
    sent = SimControl(sim.url).stats()["sent"]
    if result["records"] != records or sent != result["events"]:
        raise SystemExit(f"the naive consumer's run is incomplete: {result}, sent {sent}")
    return result


def one_run(
    number: int,
    *,
    bootstrap: str,
    topics: Topics,
    expected: int,
    args: argparse.Namespace,
    workdir: Path,
) -> dict[str, Any]:
    """A fresh simulator, the bridge over every record, then the naive consumer on a subset."""
    sim = start_sim(
        ["--latency-ms", str(args.latency_ms), "--log-level", "warning"],
        workdir / f"sim-{number}.log",
    )
    control = SimControl(sim.url)
    try:
        config = write_config(
            workdir / f"bridge-{number}.yaml",
            bootstrap=bootstrap,
            topics=topics,
            sim_url=sim.url,
            group=f"bench-bridge-{uuid.uuid4().hex[:10]}",
            delivery=args.delivery,
            receipts=receipts_in(number, args.receipts),
            tracing=args.tracing_section,
        )
        log_path = workdir / f"bridge-{number}.log"
        profile = args.profile if number == 1 else None
        figures = run_bridge(config, control, expected, log_path, profile)
        naive = run_naive(config, sim, args.naive_records) if args.naive_records else None
    finally:
        control.close()
        sim.stop()
    result: dict[str, Any] = dict(figures.__dict__)
    result["receipts"] = receipts_in(number, args.receipts)
    if naive is not None:
        result["naive_events_per_s"] = naive["events_per_s"]
        result["bridge_over_naive"] = figures.steady_events_per_s / naive["events_per_s"]
    print(f"run {number}: {json.dumps(result)}", flush=True)
    return result


def receipts_in(number: int, mode: str) -> bool:
    """Whether run ``number`` (from 1) writes receipts: ``alternate`` starts without."""
    return mode == "on" or (mode == "alternate" and number % 2 == 0)


# --------------------------------------------------------------------------- report

ROWS: list[tuple[str, str, str, Callable[[float], str]]] = [
    ("steady_events_per_s", "bridge events/s, steady", "events/s", "{:,.0f}".format),
    ("total_events_per_s", "bridge events/s, total (from spawn)", "", "{:,.0f}".format),
    ("naive_events_per_s", "naive consumer events/s", "", "{:,.1f}".format),
    ("bridge_over_naive", "bridge / naive (steady)", "bridge/naive", "{:,.0f}x".format),
    (
        "steady_cpu_per_1000",
        "bridge CPU-s per 1,000 events, steady",
        "CPU-s per 1,000 events",
        "{:.3f}".format,
    ),
    ("total_cpu_per_1000", "bridge CPU-s per 1,000 events, total", "", "{:.3f}".format),
    ("steady_rss_mb", "bridge RSS MB, steady (median)", "RSS MB", "{:.0f}".format),
    ("peak_rss_mb", "bridge RSS MB, peak", "", "{:.0f}".format),
]


def report(results: Sequence[dict[str, Any]]) -> str:
    lines = ["| figure | median | min | max | goal |", "| --- | ---: | ---: | ---: | --- |"]
    for key, label, goal, shown in ROWS:
        values = [result[key] for result in results if key in result]
        if not values:
            continue
        cells = [shown(statistics.median(values)), shown(min(values)), shown(max(values))]
        lines.append(f"| {label} | {' | '.join(cells)} | {GOALS.get(goal, '')} |")
    return "\n".join(lines)


def receipts_cost(results: Sequence[dict[str, Any]]) -> str:
    """The median steady CPU per event with receipts over without, when both ran."""
    cpu = {
        receipts: [r["steady_cpu_per_1000"] for r in results if r["receipts"] is receipts]
        for receipts in (False, True)
    }
    if not cpu[False] or not cpu[True]:
        return "receipts cost: needs runs with and without receipts (--receipts alternate)"
    ratio = statistics.median(cpu[True]) / statistics.median(cpu[False])
    return f"receipts cost: {100 * (ratio - 1):+.1f} % CPU per event (steady medians; goal < +10 %)"


def machine() -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} cores, load average {load}, Python {platform.python_version()}"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records pre-filled, in all")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--naive-records", type=int, default=1500, help="0 skips the baseline")
    parser.add_argument("--latency-ms", type=int, default=20, help="the simulator's latency")
    parser.add_argument("--max-in-flight", type=int, help="delivery.max_in_flight")
    parser.add_argument("--max-pending-records", type=int, help="delivery.max_pending_records")
    parser.add_argument(
        "--profile", type=Path, help="py-spy record the first run's bridge into this file"
    )
    parser.add_argument(
        "--keep-logs", type=Path, help="write configs and logs here (default: removed after)"
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON at the end")
    parser.add_argument(
        "--receipts",
        choices=("off", "on", "alternate"),
        default="off",
        help="write delivery receipts: never, always, or every other run (off first)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="tracing on, exported over OTLP/HTTP to a receiver in another process",
    )
    parser.add_argument("--trace-sample-ratio", type=float, help="tracing.sample_ratio")
    args = parser.parse_args(argv)
    args.delivery = {
        key: value
        for key, value in (
            ("max_in_flight", args.max_in_flight),
            ("max_pending_records", args.max_pending_records),
        )
        if value is not None
    }
    print(f"machine at start: {machine()}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp,
        broker() as bootstrap,
        fresh_topics(bootstrap) as topics,
        ExitStack() as stack,
    ):
        args.tracing_section = None
        if args.tracing:
            endpoint = stack.enter_context(receiver_process())
            args.tracing_section = {"enabled": True, "endpoint": endpoint}
            if args.trace_sample_ratio is not None:
                args.tracing_section["sample_ratio"] = args.trace_sample_ratio
        workdir = args.keep_logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        workloads = prefill(bootstrap, topics, args.records)
        probe = write_config(
            workdir / "probe.yaml",
            bootstrap=bootstrap,
            topics=topics,
            sim_url="http://127.0.0.1:1",
            group="unused",
            delivery=args.delivery,
        )
        expected = expected_events(probe, workloads, topics)
        print(f"{args.records} records in {PARTITIONS} partitions each; {expected} events expected")
        results = [
            one_run(
                number,
                bootstrap=bootstrap,
                topics=topics,
                expected=expected,
                args=args,
                workdir=workdir,
            )
            for number in range(1, args.runs + 1)
        ]
    print(f"machine at end: {machine()}")
    print(f"delivery settings: {args.delivery or 'defaults'}; simulator {args.latency_ms} ms")
    print(f"tracing: {args.tracing_section or 'off'}")
    for receipts in (False, True):
        runs = [result for result in results if result["receipts"] is receipts]
        if runs:
            print(f"receipts {'on' if receipts else 'off'} ({len(runs)} runs):")
            print(report(runs))
    print(receipts_cost(results))
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
