"""httpx's default transport against the httpx-aiohttp transport, inside the bridge's deliverer.

Delivers N events through :class:`bridge.delivery.Deliverer` (no rate limit) to
the simulator (``python -m bridge sim --latency-ms 20``) at a fixed concurrency,
once per transport per round, alternating which goes first; reports the median,
min and max of events per second and of this process's CPU-seconds per 1,000
events. The simulator runs in its own process, so the CPU figure is the
client's alone. Every delivery must be recorded ``sent`` by the simulator, or
the run fails. Only 127.0.0.1 is used; the script stops the simulator itself.

    .venv/bin/python bench/http_transport.py --events 5000 --concurrency 64 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson

from bridge.delivery import (
    CredentialsSource,
    Deliverer,
    NullObserver,
    RateLimiter,
    TransportKind,
    VibesClient,
    build_transport,
)
from bridge.mapping.engine import MappedEvent
from bridge.records import SourceRecord

ROOT = Path(__file__).resolve().parent.parent
COMPANY_KEY = "demo"
START_TIMEOUT_S = 30.0
WARM_UP_EVENTS = 256
UNLIMITED_RATE = 1e9


@dataclass(frozen=True, slots=True)
class Measurement:
    events_per_second: float
    cpu_per_1000: float


@contextmanager
def simulator(latency_ms: float, events: int) -> Iterator[str]:
    """The simulator as a subprocess; yields its base URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge",
            "sim",
            "--port",
            "0",
            "--latency-ms",
            str(latency_ms),
            "--max-events",
            "1",  # bodies are not inspected here; keep the simulator's memory flat
            "--max-event-ids",
            str(max(events * 4, 1000)),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"simulator did not start: {line!r}")
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def control(url: str, path: str, method: str = "GET") -> dict[str, int]:
    request = urllib.request.Request(
        url + path, method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, int] = json.load(response)
        return result


def events(prefix: str, count: int) -> list[MappedEvent]:
    """Realistic bodies, each with its own event_id so every one is a new ``sent``."""
    made = []
    for index in range(count):
        event_id = f"{prefix}-{index}"
        body = orjson.dumps(
            {
                "event_id": event_id,
                "event_type": "order_shipped",
                "event_data": {
                    "external_person_id": f"person-{index}",
                    "order_id": f"order-{index}",
                    "carrier": "UPS",
                    "tracking_url": f"https://track.example.com/1Z{index:012d}",
                },
                "debug_data": {"rule": "bench", "topic": "bench", "partition": 0, "offset": index},
            }
        )
        source = SourceRecord(topic="bench", partition=0, offset=index, value=None)
        made.append(MappedEvent("bench", "order_shipped", event_id, COMPANY_KEY, body, source))
    return made


async def deliver_all(deliverer: Deliverer, batch: list[MappedEvent], concurrency: int) -> None:
    pending = iter(batch)

    async def worker() -> None:
        for event in pending:
            await deliverer.deliver(event)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())


async def measure(
    url: str, kind: TransportKind, batch: list[MappedEvent], concurrency: int
) -> Measurement:
    client = VibesClient(
        base_url=url,
        api_version="2",
        timeout_seconds=10.0,
        credentials=CredentialsSource.fixed("demo", "demo"),
        transport=build_transport(kind, max_connections=concurrency),
    )
    deliverer = Deliverer(
        client, RateLimiter(UNLIMITED_RATE), observer=NullObserver(), max_retry_duration=None
    )
    try:
        await deliver_all(deliverer, batch[:WARM_UP_EVENTS], concurrency)  # connections up
        timed = batch[WARM_UP_EVENTS:]
        wall, cpu = time.perf_counter(), time.process_time()
        await deliver_all(deliverer, timed, concurrency)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await client.aclose()
    return Measurement(len(timed) / wall, cpu / len(timed) * 1000)


def run_round(
    url: str, kinds: list[TransportKind], args: argparse.Namespace, round_no: int
) -> dict[TransportKind, Measurement]:
    results = {}
    for kind in kinds:
        control(url, "/_sim/reset", "POST")
        batch = events(f"r{round_no}-{kind.value}", args.events + WARM_UP_EVENTS)
        results[kind] = asyncio.run(measure(url, kind, batch, args.concurrency))
        stats = control(url, "/_sim/stats")
        expected = len(batch)
        if stats["sent"] != expected or stats["received"] != expected:
            raise SystemExit(f"{kind.value}: simulator sent {stats['sent']} of {expected}: {stats}")
        print(
            f"round {round_no} {kind.value:>8}: {results[kind].events_per_second:8.0f} events/s "
            f"{results[kind].cpu_per_1000:6.3f} CPU-s/1000",
            flush=True,
        )
    return results


def summary(name: str, values: list[float], fmt: str) -> str:
    median, low, high = statistics.median(values), min(values), max(values)
    return f"{name} median {median:{fmt}} (min {low:{fmt}}, max {high:{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    kinds = [TransportKind.HTTPCORE, TransportKind.AIOHTTP]
    collected: dict[TransportKind, list[Measurement]] = {kind: [] for kind in kinds}
    with simulator(args.latency_ms, args.events) as url:
        for round_no in range(1, args.rounds + 1):
            order = kinds if round_no % 2 else list(reversed(kinds))
            for kind, result in run_round(url, order, args, round_no).items():
                collected[kind].append(result)
    print(
        f"\n{args.events} events, concurrency {args.concurrency}, simulator latency "
        f"{args.latency_ms:g} ms, {args.rounds} rounds"
    )
    for kind in kinds:
        rates = [m.events_per_second for m in collected[kind]]
        cpus = [m.cpu_per_1000 for m in collected[kind]]
        rate_text = summary("events/s", rates, ".0f")
        print(f"{kind.value:>8}: {rate_text}; {summary('CPU-s/1000', cpus, '.3f')}")


if __name__ == "__main__":
    main()
