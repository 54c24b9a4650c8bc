"""The bridge against go-reference, a compiled Kafka-to-HTTP client, in one invocation.

    .venv/bin/python bench/versus_go.py --records 20000 --runs 3

go-reference (franz-go and net/http, source and README in ``shared/bench/go-reference``)
does less than the bridge (no mapping, no per-key order, no rate limit, no dead
letters): it is the yardstick issue 16 measures the bridge's CPU per event and rate
against. It is built into ``.cache/go-reference/`` when missing (``go build``; the
script says so and stops when Go is absent).

Workloads, each run alternating which client goes first, each client with a fresh
simulator (``--latency-ms 20``, no rate limit) and a fresh group:

- ``example``: the bridge runs ``examples/bridge.yaml`` (rules untouched, ``as: e164``
  included) over orders (JSON) and shipments (Avro), as bench/end_to_end.py does;
  go-reference posts the very bodies those records map to, ready-made, from a topic
  of their own (same keys, same count);
- ``pass-through``: ``--records`` ready Vibes bodies, distinct keys; the bridge with one
  rule that copies the body's fields, go-reference posting the value as is;
- ``zipf`` (``--zipf``): the same ready bodies with keys drawn from a Zipf law
  (exponent ``--zipf-exponent`` 1.1 over ``--zipf-keys`` 10,000 keys; the hottest key
  holds about 15 % of the records); the bridge only. Per-key order caps the rate:
  the hottest key's events go one at a time, so the ceiling is records / (the
  hottest key's records x the simulator's latency). Reported: the rate against
  that ceiling and against the same run's pass-through rate, and whether every
  key's events reached the simulator in record order.

Figures per client: events/s and CPU-s per 1,000 events between 10 % and 90 % of the
events ("steady", as in bench/end_to_end.py), resident memory (median over that
window, and peak). The ratios (bridge / go) are taken per run and their medians,
minimums and maximums printed. No figure is asserted anywhere: docs/performance.md.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import itertools
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' helpers are not installed with the package

from bench.end_to_end import (  # noqa: E402
    PARTITIONS,
    Sample,
    Topics,
    bridge_figures,
    broker,
    expected_events,
    fresh_topics,
    log_tail,
    machine,
    prefill,
    resident_mb,
    run_bridge,
    write_config,
)
from bench.sim_throughput import cpu_seconds  # noqa: E402
from bridge.loading import load_bridge  # noqa: E402
from tests.support.kafka import produce, wait_for_topic  # noqa: E402
from tests.support.simulator import SimControl, start_sim  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

GO_BINARY = REPO / ".cache" / "go-reference" / "go-reference"
# Where the shared tree keeps go-reference's source, seen from a checkout or a worktree.
GO_SOURCES = tuple(parent / "shared" for parent in REPO.parents)
SAMPLE_INTERVAL_S = 0.2
COMPANY = "demo"


@dataclass(frozen=True)
class Figures:
    events_per_s: float
    cpu_per_1000: float
    rss_mb: float
    peak_rss_mb: float
    # From the first event sent to the last: the rate a skewed run's ceiling bounds.
    from_first_per_s: float = 0.0


@dataclass
class Series:
    """One workload's runs: each client's figures per run, and the per-run ratios."""

    bridge: list[Figures] = field(default_factory=list)
    go: list[Figures] = field(default_factory=list)
    extra: list[dict[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- go-reference


def go_reference(binary: Path, source: Path | None) -> Path:
    """The go-reference binary: ``binary`` when it exists, otherwise built there."""
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise SystemExit(f"go-reference is not built ({binary}) and Go is not installed")
    found = source or next(
        (root / "bench" / "go-reference" for root in GO_SOURCES if (root / "bench").exists()),
        None,
    )
    if found is None or not (found / "main.go").exists():
        raise SystemExit("go-reference's source not found: pass --go-source DIR")
    print(f"building go-reference from {found} into {binary}", flush=True)
    binary.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=found, check=True, timeout=600)
    return binary


def run_go(
    binary: Path, *, bootstrap: str, topic: str, sim_url: str, expected: int, log_path: Path
) -> Figures:
    """go-reference over ``topic`` until the simulator sent ``expected`` events; SIGTERM."""
    env = {
        **os.environ,
        "BOOTSTRAP": bootstrap,
        "TOPIC": topic,
        "GROUP_ID": f"bench-go-{uuid.uuid4().hex[:10]}",
        "VIBES_URL": f"{sim_url}/companies/{COMPANY}/events",
        "VIBES_USERNAME": "demo",
        "VIBES_PASSWORD": "demo",
        "IN_FLIGHT": "64",
    }
    control = SimControl(sim_url)
    spawned_at = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=subprocess.STDOUT)
    samples: list[Sample] = []
    try:

        def all_sent() -> bool:
            if proc.poll() is not None:
                raise SystemExit(f"go-reference exited early:\n{log_tail(log_path)}")
            samples.append(
                Sample(
                    at=time.monotonic() - spawned_at,
                    sent=control.stats()["sent"],
                    cpu=cpu_seconds(proc.pid) or 0.0,
                    rss_mb=resident_mb(proc.pid)[0],
                )
            )
            time.sleep(SAMPLE_INTERVAL_S)
            return samples[-1].sent >= expected

        wait_until(all_sent, 120 + expected / 100, f"{expected} events sent by go-reference")
        peak = resident_mb(proc.pid)[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        control.close()
    return _figures(samples, expected, peak)


def _figures(samples: Sequence[Sample], expected: int, peak: float) -> Figures:
    measured = bridge_figures(samples, expected, peak)
    return Figures(
        measured.steady_events_per_s,
        measured.steady_cpu_per_1000,
        measured.steady_rss_mb,
        measured.peak_rss_mb,
    )


# --------------------------------------------------------------------------- workloads


def zipf_keys(count: int, keys: int, exponent: float, seed: int = 16) -> list[int]:
    """``count`` key numbers drawn from a Zipf law over ``keys`` keys (1 the hottest)."""
    weights = [1 / rank**exponent for rank in range(1, keys + 1)]
    cumulative = list(itertools.accumulate(weights))
    draw = random.Random(seed).random
    total = cumulative[-1]
    return [bisect.bisect_left(cumulative, draw() * total) + 1 for _ in range(count)]


def ready_bodies(key_numbers: Sequence[int], tag: str) -> list[tuple[bytes, bytes]]:
    """Ready Vibes bodies keyed by customer; the event id names the key and its sequence."""
    sequence: Counter[int] = Counter()
    records = []
    for index, key in enumerate(key_numbers):
        sequence[key] += 1
        body = {
            "event_id": f"{tag}-{key}-{sequence[key]:07d}",
            "event_type": "order_confirmed",
            "event_data": {
                "first_name": "Dana",
                "order_id": f"ORD-{index:08d}",
                "total": "45.40 USD",
                "external_person_id": f"CUST-{key}",
                "mdn": "+14155550142",
            },
        }
        records.append((f"CUST-{key}".encode(), orjson.dumps(body)))
    return records


PASS_THROUGH_RULE: dict[str, Any] = {
    "name": "pass-through",
    "event_type": {"template": "{event_type}"},
    "event_id": {"template": "{event_id}"},
    "recipient": {
        "external_person_id": "event_data.external_person_id",
        "mdn": "event_data.mdn",
    },
    "event_data": {
        "first_name": "event_data.first_name",
        "order_id": "event_data.order_id",
        "total": "event_data.total",
    },
    "debug_data": False,
}


def pass_through_config(
    path: Path, example: Path, topic: str, delivery: dict[str, int] | None = None
) -> Path:
    """The example file's settings with one source (JSON) and one pass-through rule."""
    yaml = YAML(typ="rt")
    document = yaml.load(example.read_text(encoding="utf-8"))
    document.setdefault("delivery", {}).update(delivery or {})
    document["sources"] = [{"topic": topic, "format": "json"}]
    document["rules"] = [{**PASS_THROUGH_RULE, "topic": topic}]
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(document, stream)
    return path


@contextmanager
def topic(
    bootstrap: str,
    name: str,
    records: Sequence[tuple[bytes, bytes]],
    partitions: int = PARTITIONS,
) -> Iterator[str]:
    """A fresh topic holding ``records``; deleted on the way out."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions)])[name].result(timeout=30)
    try:
        wait_for_topic(admin, name, partitions)
        produce(bootstrap, name, records)
        yield name
    finally:
        admin.delete_topics([name], operation_timeout=10)[name].result(timeout=15)


def mapped_bodies(config: Path, workloads: Sequence[Any], topics: Topics) -> list[Any]:
    """The bodies the example maps the workloads to (what go-reference posts ready-made)."""
    loaded = load_bridge(config)
    bodies = []
    for name, workload in zip((topics.orders, topics.shipments), workloads, strict=True):
        decode = loaded.decoders[name].decode
        for record in workload.records:
            located = dataclasses.replace(record, topic=name)
            for event in loaded.engine.map(decode(record.value), located).events:
                bodies.append((record.key, event.body))
    loaded.close()
    return bodies


def hot_key_gaps_ms(events: Sequence[dict[str, Any]], key: int) -> list[float]:
    """Milliseconds between the simulator's receipts of one key's consecutive events:
    its latency plus everything the round trip adds (the client's turnaround, both
    loops' queueing). The hottest key's gaps are what the Zipf run's length is made of."""
    stamps = [
        datetime.fromisoformat(event["received_at"].replace("Z", "+00:00")).timestamp()
        for event in events
        if event["event_id"].rsplit("-", 2)[1] == str(key)
    ]
    return [(later - earlier) * 1000 for earlier, later in itertools.pairwise(stamps)]


def in_record_order(events: Sequence[dict[str, Any]]) -> bool:
    """Every key's events arrived in sequence (ids ``tag-KEY-SEQ``, SEQ from 1 up)."""
    last: dict[str, int] = {}
    for event in events:
        _, key, seq = event["event_id"].rsplit("-", 2)
        if int(seq) != last.get(key, 0) + 1:
            return False
        last[key] = int(seq)
    return True


# --------------------------------------------------------------------------- runs


def bridge_run(
    config: Path,
    sim_args: Sequence[str],
    expected: int,
    workdir: Path,
    name: str,
    profile: Path | None = None,
) -> tuple[Figures, list[dict[str, Any]] | None]:
    """The bridge with a fresh simulator; its figures and the events (for order checks)."""
    sim = start_sim([*sim_args, "--log-level", "warning"], workdir / f"sim-{name}.log")
    control = SimControl(sim.url)
    try:
        rewritten = _point_at(config, sim.url, workdir / f"{name}.yaml")
        measured = run_bridge(rewritten, control, expected, workdir / f"{name}.log", profile)
        events = control.events() if expected <= 100_000 else None
    finally:
        control.close()
        sim.stop()
    figures = Figures(
        measured.steady_events_per_s,
        measured.steady_cpu_per_1000,
        measured.steady_rss_mb,
        measured.peak_rss_mb,
        measured.from_first_event_per_s,
    )
    return figures, events


def _point_at(config: Path, sim_url: str, out: Path) -> Path:
    yaml = YAML(typ="rt")
    document = yaml.load(config.read_text(encoding="utf-8"))
    document["vibes"]["base_url"] = sim_url
    document["kafka"]["group_id"] = f"bench-bridge-{uuid.uuid4().hex[:10]}"
    with out.open("w", encoding="utf-8") as stream:
        yaml.dump(document, stream)
    return out


def go_run(
    binary: Path,
    bootstrap: str,
    topic_name: str,
    sim_args: Sequence[str],
    expected: int,
    workdir: Path,
    name: str,
) -> Figures:
    sim = start_sim([*sim_args, "--log-level", "warning"], workdir / f"sim-{name}.log")
    try:
        return run_go(
            binary,
            bootstrap=bootstrap,
            topic=topic_name,
            sim_url=sim.url,
            expected=expected,
            log_path=workdir / f"{name}.log",
        )
    finally:
        sim.stop()


# --------------------------------------------------------------------------- report


def spread(values: Sequence[float], shown: Callable[[float], str]) -> str:
    return f"{shown(statistics.median(values))} ({shown(min(values))} to {shown(max(values))})"


def report(name: str, series: Series) -> str:
    rate = "{:,.0f}".format
    cpu = "{:.3f}".format
    mb = "{:.0f}".format
    ratio = "{:.2f}".format
    lines = [
        f"### {name}",
        "",
        "| figure | bridge | go-reference | bridge / go |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows: list[tuple[str, Callable[[Figures], float], Callable[[float], str]]] = [
        ("events/s, steady", lambda f: f.events_per_s, rate),
        ("CPU-s per 1,000 events, steady", lambda f: f.cpu_per_1000, cpu),
        ("RSS MB, steady (median)", lambda f: f.rss_mb, mb),
        ("RSS MB, peak", lambda f: f.peak_rss_mb, mb),
    ]
    for label, pick, shown in rows:
        bridge = [pick(f) for f in series.bridge]
        go = [pick(f) for f in series.go]
        if go:
            ratios = [b / g for b, g in zip(bridge, go, strict=True) if g]
            cells = [spread(bridge, shown), spread(go, shown), spread(ratios, ratio)]
            lines.append(f"| {label} | {' | '.join(cells)} |")
        else:
            lines.append(f"| {label} | {spread(bridge, shown)} | | |")
    for key in sorted({k for extra in series.extra for k in extra}):
        values = [extra[key] for extra in series.extra if key in extra]
        lines.append(f"| {key} | {spread(values, '{:,.2f}'.format)} | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument(
        "--workloads",
        default="example,pass-through",
        help="comma-separated: example, pass-through, zipf",
    )
    parser.add_argument("--zipf-keys", type=int, default=10_000)
    parser.add_argument("--zipf-exponent", type=float, default=1.1)
    parser.add_argument(
        "--zipf-max-pending",
        type=int,
        help="delivery.max_pending_records for the Zipf runs (default: the bridge's)",
    )
    parser.add_argument("--go-binary", type=Path, default=GO_BINARY)
    parser.add_argument("--go-source", type=Path, help="go-reference's source directory")
    parser.add_argument("--profile", type=Path, help="py-spy the first pass-through bridge run")
    parser.add_argument("--keep-logs", type=Path)
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = set(workloads) - {"example", "pass-through", "zipf"}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    binary = go_reference(args.go_binary, args.go_source)
    sim_args = ["--latency-ms", str(args.latency_ms)]
    print(f"machine at start: {machine()}", flush=True)
    results: dict[str, Series] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-go-") as tmp,
        broker() as bootstrap,
        topic(bootstrap, f"bench.dlq.{uuid.uuid4().hex[:8]}", [], partitions=1) as dlq,
    ):
        workdir = args.keep_logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        suffix = uuid.uuid4().hex[:8]
        if "example" in workloads:
            results["example"] = example_series(args, binary, bootstrap, sim_args, workdir)
        uniform_rates: list[float] = []
        if "pass-through" in workloads or "zipf" in workloads:
            keys = list(range(1, args.records + 1))
            with topic(bootstrap, f"bench.ready.{suffix}", ready_bodies(keys, "u")) as name:
                config = pass_through_config(
                    workdir / "pass-through.yaml", _base_config(workdir, bootstrap, dlq), name
                )

                def pt_bridge(n: int) -> Figures:
                    profile = args.profile if n == 1 else None
                    return bridge_run(
                        config, sim_args, args.records, workdir, f"pt-bridge-{n}", profile
                    )[0]

                def pt_go(n: int) -> Figures:
                    return go_run(
                        binary, bootstrap, name, sim_args, args.records, workdir, f"pt-go-{n}"
                    )

                series = side_by_side("pass-through", args.runs, pt_bridge, pt_go)
                results["pass-through"] = series
                uniform_rates = [f.events_per_s for f in series.bridge]
        if "zipf" in workloads:
            results["zipf"] = zipf_series(
                args, bootstrap, sim_args, workdir, suffix, uniform_rates, dlq
            )
    print(f"machine at end: {machine()}")
    print(f"{args.records} records, {PARTITIONS} partitions, simulator {args.latency_ms} ms")
    for name, series in results.items():
        print()
        print(report(name, series))


def side_by_side(
    label: str, runs: int, bridge: Callable[[int], Figures], go: Callable[[int], Figures]
) -> Series:
    """Both clients per run, which goes first alternating with the run number."""
    series = Series()
    for number in range(1, runs + 1):
        if number % 2:
            series.bridge.append(bridge(number))
            series.go.append(go(number))
        else:
            series.go.append(go(number))
            series.bridge.append(bridge(number))
        print(f"{label} run {number}: {series.bridge[-1]} {series.go[-1]}", flush=True)
    return series


def _base_config(workdir: Path, bootstrap: str, dead_letters: str) -> Path:
    """examples/bridge.yaml as bench/end_to_end.py points it (the topics replaced later)."""
    placeholder = Topics("unused.orders", "unused.shipments", dead_letters, "unused.receipts")
    return write_config(
        workdir / "base.yaml",
        bootstrap=bootstrap,
        topics=placeholder,
        sim_url="http://127.0.0.1:1",
        group="unused",
        delivery={},
    )


def example_series(
    args: argparse.Namespace, binary: Path, bootstrap: str, sim_args: list[str], workdir: Path
) -> Series:
    with fresh_topics(bootstrap) as topics:
        workloads = prefill(bootstrap, topics, args.records)
        config = write_config(
            workdir / "example.yaml",
            bootstrap=bootstrap,
            topics=topics,
            sim_url="http://127.0.0.1:1",
            group="unused",
            delivery={},
        )
        expected = expected_events(config, workloads, topics)
        bodies = mapped_bodies(config, workloads, topics)
        with topic(bootstrap, f"{topics.orders}.ready", bodies) as ready:

            def ex_bridge(n: int) -> Figures:
                return bridge_run(config, sim_args, expected, workdir, f"ex-bridge-{n}")[0]

            def ex_go(n: int) -> Figures:
                return go_run(binary, bootstrap, ready, sim_args, expected, workdir, f"ex-go-{n}")

            return side_by_side("example", args.runs, ex_bridge, ex_go)


def zipf_series(
    args: argparse.Namespace,
    bootstrap: str,
    sim_args: list[str],
    workdir: Path,
    suffix: str,
    uniform_rates: list[float],
    dlq: str,
) -> Series:
    keys = zipf_keys(args.records, args.zipf_keys, args.zipf_exponent)
    hot_key, hottest = Counter(keys).most_common(1)[0]
    ceiling = args.records / (hottest * args.latency_ms / 1000)
    print(
        f"zipf: hottest key {hottest} of {args.records} records ({hottest / args.records:.1%});"
        f" ceiling {ceiling:,.0f} events/s",
        flush=True,
    )
    series = Series()
    with topic(bootstrap, f"bench.zipf.{suffix}", ready_bodies(keys, "z")) as name:
        pending = {"max_pending_records": args.zipf_max_pending} if args.zipf_max_pending else {}
        config = pass_through_config(
            workdir / "zipf.yaml", _base_config(workdir, bootstrap, dlq), name, pending
        )
        for number in range(1, args.runs + 1):
            figures, events = bridge_run(
                config, sim_args, args.records, workdir, f"zipf-bridge-{number}"
            )
            series.bridge.append(figures)
            target = min([ceiling, *([statistics.median(uniform_rates)] if uniform_rates else [])])
            series.extra.append(
                {
                    "ceiling events/s": ceiling,
                    "events/s, first to last event": figures.from_first_per_s,
                    "rate / ceiling": figures.from_first_per_s / ceiling,
                    "rate / min(uniform, ceiling)": figures.from_first_per_s / target,
                    "order kept (1 yes)": float(events is not None and in_record_order(events)),
                }
            )
            if events is not None:
                gaps = sorted(hot_key_gaps_ms(events, hot_key))
                series.extra[-1]["hot key: ms between its events, median"] = gaps[len(gaps) // 2]
                series.extra[-1]["hot key: ms between its events, p90"] = gaps[len(gaps) * 9 // 10]
            print(f"zipf run {number}: {figures} {series.extra[-1]}", flush=True)
    return series


if __name__ == "__main__":
    main()
