"""httpx's default transport against the httpx-aiohttp transport, inside the bridge's deliverer;
and the raw POST path of the bridge's client against httpx2's.

Delivers N events through :class:`bridge.delivery.Deliverer` (no rate limit) to
the simulator (``python -m bridge sim --latency-ms 20``) at a fixed concurrency,
once per transport per round, alternating which goes first; reports the median,
min and max of events per second and of this process's CPU-seconds per 1,000
events. The simulator runs in its own process, so the CPU figure is the
client's alone. Every delivery must be recorded ``sent`` by the simulator, or
the run fails. Only 127.0.0.1 is used; the script stops the simulator itself.

    .venv/bin/python bench/http_transport.py --events 5000 --concurrency 64 --rounds 5

Two more variants, without the deliverer (no rate limiter, no retry), so they compare
the HTTP stacks alone: ``aiohttp-raw``, the bridge's ``VibesClient.post_event`` (httpx
requests on the aiohttp transport, what every delivery attempt does), and ``httpx2``,
the maintained fork of httpx (``httpx2`` on PyPI, its own ``httpcore2`` pool) posting
the same request straight to its transport the same way. ``--variants`` picks them
(httpx2 is not a dependency of the bridge: ``pip install -e '.[bench]'``).
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
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from bridge.bounded_http import NO_COMPRESSION
from bridge.delivery import (
    CredentialsSource,
    Deliverer,
    NullObserver,
    RateLimiter,
    TransportKind,
    VibesClient,
    build_transport,
)
from bridge.delivery.outcomes import Delivered
from bridge.delivery.transport import KEEPALIVE_EXPIRY_SECONDS
from bridge.mapping.engine import MappedEvent
from bridge.records import SourceRecord
from bridge.vibes.api import API_VERSION_HEADER, JSON_CONTENT_TYPE, events_path

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


async def timed(
    post: Callable[[MappedEvent], Awaitable[object]], batch: list[MappedEvent], concurrency: int
) -> Measurement:
    """``post`` for every event, ``concurrency`` at a time; the first WARM_UP_EVENTS untimed."""

    async def all_of(events: list[MappedEvent]) -> None:
        pending = iter(events)

        async def worker() -> None:
            for event in pending:
                await post(event)

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())

    await all_of(batch[:WARM_UP_EVENTS])  # connections up
    rest = batch[WARM_UP_EVENTS:]
    wall, cpu = time.perf_counter(), time.process_time()
    await all_of(rest)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Measurement(len(rest) / wall, cpu / len(rest) * 1000)


async def measure_raw_client(url: str, batch: list[MappedEvent], concurrency: int) -> Measurement:
    """The bridge's client alone: one ``post_event`` per event (httpx on aiohttp)."""
    client = VibesClient(
        base_url=url,
        api_version="2",
        timeout_seconds=10.0,
        credentials=CredentialsSource.fixed("demo", "demo"),
        transport=build_transport(TransportKind.AIOHTTP, max_connections=concurrency),
    )

    async def post(event: MappedEvent) -> None:
        outcome = await client.post_event(COMPANY_KEY, event.body)
        if not isinstance(outcome, Delivered):
            raise SystemExit(f"aiohttp-raw: {outcome}")

    try:
        return await timed(post, batch, concurrency)
    finally:
        await client.aclose()


async def measure_httpx2(url: str, batch: list[MappedEvent], concurrency: int) -> Measurement:
    """httpx2's request model and pool, used as the bridge's client uses httpx: a prebuilt
    URL and headers, each request straight to the transport, the answer read in full."""
    import httpx2  # a benchmark-only comparison; not a dependency of the bridge

    transport = httpx2.AsyncHTTPTransport(
        limits=httpx2.Limits(
            max_connections=concurrency,
            max_keepalive_connections=concurrency,
            keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
        )
    )
    target = httpx2.URL(f"{url}{events_path(COMPANY_KEY)}")
    headers = httpx2.Headers(
        {
            API_VERSION_HEADER: "2",
            "Content-Type": JSON_CONTENT_TYPE,
            "Authorization": CredentialsSource.fixed("demo", "demo").authorization(),
            **NO_COMPRESSION,
        }
    )
    extensions = {"timeout": httpx2.Timeout(10.0).as_dict()}

    async def post(event: MappedEvent) -> None:
        request = httpx2.Request(
            "POST", target, content=event.body, headers=headers, extensions=extensions
        )
        response = await transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        if not 200 <= response.status_code < 300:
            raise SystemExit(f"httpx2: status {response.status_code}")

    try:
        return await timed(post, batch, concurrency)
    finally:
        await transport.aclose()


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


VARIANTS: dict[str, Callable[[str, list[MappedEvent], int], Coroutine[Any, Any, Measurement]]] = {
    **{
        kind.value: partial(lambda url, b, c, kind: measure(url, kind, b, c), kind=kind)
        for kind in TransportKind
    },
    "aiohttp-raw": measure_raw_client,
    "httpx2": measure_httpx2,
}


def run_round(
    url: str, variants: list[str], args: argparse.Namespace, round_no: int
) -> dict[str, Measurement]:
    results: dict[str, Measurement] = {}
    for name in variants:
        control(url, "/_sim/reset", "POST")
        batch = events(f"r{round_no}-{name}", args.events + WARM_UP_EVENTS)
        results[name] = asyncio.run(VARIANTS[name](url, batch, args.concurrency))
        stats = control(url, "/_sim/stats")
        expected = len(batch)
        if stats["sent"] != expected or stats["received"] != expected:
            raise SystemExit(f"{name}: simulator sent {stats['sent']} of {expected}: {stats}")
        print(
            f"round {round_no} {name:>11}: {results[name].events_per_second:8.0f} events/s "
            f"{results[name].cpu_per_1000:6.3f} CPU-s/1000",
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
    parser.add_argument(
        "--variants",
        default="httpcore,aiohttp",
        help=f"comma-separated, of: {', '.join(VARIANTS)}",
    )
    args = parser.parse_args()
    kinds = [name.strip() for name in args.variants.split(",") if name.strip()]
    if unknown := set(kinds) - set(VARIANTS):
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    collected: dict[str, list[Measurement]] = {kind: [] for kind in kinds}
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
        print(f"{kind:>11}: {rate_text}; {summary('CPU-s/1000', cpus, '.3f')}")


if __name__ == "__main__":
    main()
