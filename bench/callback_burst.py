"""Answer time of the callback receiver at a burst of callbacks (Vibes waits about 2 s).

Runs :class:`bridge.service.callback_receiver.CallbackReceiver` in this process
with its real producer against the broker at ``KAFKA_BOOTSTRAP_SERVERS`` (a
fresh one-partition topic per run) and fires N callbacks at it from C concurrent
clients at once; each answer's time is measured at the client, from send to
answer. Reports p50, p99 and max per round, then the median, min and max of the
rounds' p99. Every answer must be 200, or the run fails. Only 127.0.0.1 is used.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:34513 \
        .venv/bin/python bench/callback_burst.py --callbacks 2000 --concurrency 100 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import aiohttp
import orjson
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import SecretStr

from bridge.config.model import CallbackSettings, KafkaSettings
from bridge.kafka.config import callback_producer_config
from bridge.kafka.producer import AcknowledgedProducer
from bridge.metrics import BridgeMetrics
from bridge.service.callback_receiver import CallbackReceiver

TOKEN = "bench-token-0123456789abcdef"


def body(number: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "callback_type": "event_processed",
            "event_date": "2026-01-10T10:00:00Z",
            "event_processed": {
                "event_id": f"evt-{number}",
                "event_type": "order_shipped",
                "event_data": {"external_person_id": f"p-{number}", "order_id": f"o-{number}"},
                "debug_data": {
                    "rule": "r",
                    "topic": "shop.orders",
                    "partition": 0,
                    "offset": number,
                },
                "action": {
                    "type": "routing",
                    "status": "processing",
                    "status_reason": "accepted_by_event_triggered_message",
                },
            },
        }
    )


async def one_round(bootstrap: str, callbacks: int, concurrency: int) -> list[float]:
    topic = f"bench-callbacks-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    settings = CallbackSettings(
        host="127.0.0.1", port=0, token=SecretStr(TOKEN), topic=topic, allow_from=["127.0.0.1/32"]
    )
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    producer = AcknowledgedProducer(
        callback_producer_config(kafka, settings.store_timeout_seconds).settings,
        asyncio.get_running_loop(),
    )
    metrics = BridgeMetrics()
    receiver = CallbackReceiver(settings, TOKEN, producer, metrics, dead_letter_topic=topic)
    _host, port = await receiver.start()
    url = f"http://127.0.0.1:{port}/vibes/callbacks/{TOKEN}"
    # The clients run in a process of their own: on this process's loop they
    # would compete with the receiver and be measured as its slowness.
    # spawn, not fork: this process runs librdkafka's threads.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        times = await asyncio.get_running_loop().run_in_executor(
            pool, fire, url, callbacks, concurrency
        )
    await receiver.stop()
    await asyncio.to_thread(producer.close, 5.0)
    stored = metrics.registry.get_sample_value("vibes_bridge_callback_store_seconds_count") or 0
    spent = metrics.registry.get_sample_value("vibes_bridge_callback_store_seconds_sum") or 0
    print(
        f"  receiver: {stored:.0f} stored, mean handler time {spent / max(stored, 1) * 1e3:.1f} ms"
    )
    return times


def fire(url: str, callbacks: int, concurrency: int) -> list[float]:
    """Send the burst; each answer's time at the client (child process)."""
    return asyncio.run(_fire(url, callbacks, concurrency))


async def _fire(url: str, callbacks: int, concurrency: int) -> list[float]:
    bodies = [body(number) for number in range(callbacks)]
    times: list[float] = []
    # aiohttp's client: httpx's own pool costs several times more CPU per request
    # at this concurrency (docs/performance.md) and would be measured instead.
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        gate = asyncio.Semaphore(concurrency)

        async def send(payload: bytes) -> None:
            async with gate:
                started = time.perf_counter()
                async with client.post(url, data=payload) as answer:
                    await answer.read()
                    times.append(time.perf_counter() - started)
                    if answer.status != 200:
                        raise RuntimeError(f"answer {answer.status}")

        await asyncio.gather(*(send(payload) for payload in bodies))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    p99s = []
    for number in range(1, args.rounds + 1):
        times = sorted(asyncio.run(one_round(bootstrap, args.callbacks, args.concurrency)))
        p50 = times[len(times) // 2]
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        p99s.append(p99)
        worst = times[-1]
        figures = f"p50 {p50 * 1e3:.1f} ms  p99 {p99 * 1e3:.1f} ms  max {worst * 1e3:.1f} ms"
        print(f"round {number}: {figures}")
    print(
        f"p99 over {args.rounds} rounds: median {statistics.median(p99s) * 1000:.1f} ms "
        f"(min {min(p99s) * 1000:.1f}, max {max(p99s) * 1000:.1f})"
    )


if __name__ == "__main__":
    main()
