"""What an idle bridge costs, and how soon it is ready: ``vibes-bridge run`` with no traffic.

    .venv/bin/python bench/idle.py --seconds 120 --runs 3

Per run: a fresh empty topic (6 partitions), a fresh simulator, ``vibes-bridge run``
with bench/versus_go.py's pass-through rule and a fresh group. Measured:

- **ready**: from spawning the process to the first ``200`` from ``/readyz``
  (polled every 20 ms);
- **idle CPU**: after a settling period (``--settle``, default 10 s: the group join
  and the first commits), the process's CPU time (utime + stime, /proc) over
  ``--seconds``, with ``/metrics`` scraped every 15 s as Prometheus would, as a
  percentage of one core; its resident memory (median of samples, and VmHWM), threads
  and context switches (all threads' voluntary + involuntary, a count of wake-ups)
  per second.

With ``--go`` go-reference idles beside it the same way (its CPU and memory; it has
no readiness endpoint). No figure is asserted anywhere: docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' helpers are not installed with the package

from bench.end_to_end import broker, machine, resident_mb  # noqa: E402
from bench.sim_throughput import cpu_seconds  # noqa: E402
from bench.versus_go import (  # noqa: E402
    COMPANY,
    GO_BINARY,
    _base_config,
    _point_at,
    go_reference,
    pass_through_config,
    topic,
)
from tests.support.simulator import start_sim  # noqa: E402

SCRAPE_EVERY_S = 15.0
READY_POLL_S = 0.02


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every thread of ``pid``."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:  # a thread that ended meanwhile
            continue
    return total


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def until_ready(proc: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds from now (the spawn) until ``/readyz`` answers 200; the address is logged."""
    started = time.monotonic()
    deadline = started + 60
    address = None
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the bridge exited:\n{log.read_text()[-2000:]}")
            if address is None:
                address = _management(log)
            if address is not None:
                try:
                    if client.get(f"{address}/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
            time.sleep(READY_POLL_S)
    raise SystemExit("the bridge was not ready within 60 s")


def _management(log: Path) -> str | None:
    for raw in log.read_text(errors="replace").splitlines():
        if "vibes-bridge running" in raw:
            address: str = json.loads(raw)["management"]
            return address.replace("0.0.0.0", "127.0.0.1")
    return None


def idle(pid: int, seconds: float, scrape: str | None) -> dict[str, float]:
    """CPU share, memory, threads and wake-ups of ``pid`` over ``seconds``, scraping as asked."""
    cpu0, switches0, started = cpu_seconds(pid) or 0.0, context_switches(pid), time.monotonic()
    rss: list[float] = []
    next_scrape = started
    with httpx.Client(timeout=5.0) as client:
        while (now := time.monotonic()) < started + seconds:
            if scrape is not None and now >= next_scrape:
                client.get(f"{scrape}/metrics").raise_for_status()
                next_scrape += SCRAPE_EVERY_S
            rss.append(resident_mb(pid)[0])
            time.sleep(min(1.0, max(0.0, started + seconds - time.monotonic())))
    elapsed = time.monotonic() - started
    cpu = (cpu_seconds(pid) or 0.0) - cpu0
    return {
        "idle CPU % of a core": 100 * cpu / elapsed,
        "idle CPU-s per minute": 60 * cpu / elapsed,
        "idle RSS MB (median)": statistics.median(rss),
        "peak RSS MB": resident_mb(pid)[1],
        "threads": float(threads(pid)),
        "wake-ups per s": (context_switches(pid) - switches0) / elapsed,
    }


def one_run(
    number: int, args: argparse.Namespace, bootstrap: str, topics: tuple[str, str], workdir: Path
) -> dict[str, float]:
    name, dlq = topics
    sim = start_sim(["--log-level", "warning"], workdir / f"sim-{number}.log")
    try:
        base = _base_config(workdir, bootstrap, dlq)
        config = _point_at(
            pass_through_config(workdir / "idle.yaml", base, name),
            sim.url,
            workdir / f"idle-{number}.yaml",
        )
        log = workdir / f"bridge-{number}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bridge", "run", "-c", str(config)],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            result = {"ready s": until_ready(proc, log)}
            time.sleep(args.settle)
            result.update(idle(proc.pid, args.seconds, _management(log)))
        finally:
            proc.terminate()
            proc.wait(30)
        if args.go:
            result.update(go_idle(args, bootstrap, name, sim.url, workdir))
    finally:
        sim.stop()
    print(f"run {number}: {result}", flush=True)
    return result


def go_idle(
    args: argparse.Namespace, bootstrap: str, name: str, sim_url: str, workdir: Path
) -> dict[str, float]:
    env = {
        **os.environ,
        "BOOTSTRAP": bootstrap,
        "TOPIC": name,
        "GROUP_ID": f"bench-go-{uuid.uuid4().hex[:10]}",
        "VIBES_URL": f"{sim_url}/companies/{COMPANY}/events",
        "VIBES_USERNAME": "demo",
        "VIBES_PASSWORD": "demo",
    }
    binary = go_reference(args.go_binary, None)
    with (workdir / "go.log").open("wb") as out:
        proc = subprocess.Popen([str(binary)], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(args.settle)
        measured = idle(proc.pid, args.seconds, None)
    finally:
        proc.terminate()
        proc.wait(30)
    return {f"go-reference {key}": value for key, value in measured.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="idle window per run")
    parser.add_argument("--settle", type=float, default=10.0, help="wait after ready")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--go", action="store_true", help="go-reference idles beside it")
    parser.add_argument("--go-binary", type=Path, default=GO_BINARY)
    parser.add_argument("--keep-logs", type=Path)
    args = parser.parse_args(argv)
    print(f"machine at start: {machine()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp, broker() as bootstrap:
        workdir = args.keep_logs or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        suffix = uuid.uuid4().hex[:8]
        with (
            topic(bootstrap, f"bench.idle.{suffix}", []) as name,
            topic(bootstrap, f"bench.idle-dlq.{suffix}", [], partitions=1) as dlq,
        ):
            results = [
                one_run(n, args, bootstrap, (name, dlq), workdir) for n in range(1, args.runs + 1)
            ]
    print(f"machine at end: {machine()}")
    print("| figure | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    for key in results[0]:
        values = [result[key] for result in results]
        cells = [f"{statistics.median(values):,.3f}", f"{min(values):,.3f}", f"{max(values):,.3f}"]
        print(f"| {key} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
