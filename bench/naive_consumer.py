"""The baseline: a Kafka-to-Vibes consumer written by hand, the obvious way.

This is what a user writes before reaching for a bridge: poll one record, decode
and map it (here with the bridge's own engine, so both sides do the same mapping
work), POST each event with a synchronous ``httpx.Client``, commit the record
synchronously, repeat. One request in flight at a time, so the rate is bound by
the Vibes round trip; that is the point of the comparison, not a straw man: the
single-threaded peer in shared/design/performance-notes.md is built the same way.

    .venv/bin/python bench/naive_consumer.py -c bridge.yaml --group G --records 1500

It stops after ``--records`` records (or ``--timeout`` seconds) and prints one
JSON line: records, events, seconds (first record received to last commit),
events_per_s, cpu_seconds and peak_rss_mb of this process. bench/end_to_end.py
runs it next to ``vibes-bridge run`` on the same topics and simulator.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from confluent_kafka import Consumer

from bridge.kafka.messages import to_source_record
from bridge.loading import load_bridge
from bridge.vibes.api import API_VERSION_HEADER, DEFAULT_API_VERSION, events_path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", type=Path, required=True)
    parser.add_argument("--group", required=True, help="consumer group (a fresh one)")
    parser.add_argument("--records", type=int, default=1500)
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after seconds")
    args = parser.parse_args(argv)

    loaded = load_bridge(args.config)
    settings = loaded.settings
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(list(loaded.decoders))
    client = httpx.Client(
        base_url=settings.vibes.base_url,
        auth=(
            loaded.credentials.username.get_secret_value(),
            loaded.credentials.password.get_secret_value(),
        ),
        headers={API_VERSION_HEADER: DEFAULT_API_VERSION, "Content-Type": "application/json"},
        timeout=settings.vibes.timeout_seconds,
    )
    records = events = 0
    first_record_at = 0.0
    deadline = time.monotonic() + args.timeout
    try:
        while records < args.records and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            if records == 0:
                first_record_at = time.monotonic()
            record = to_source_record(message)
            value = loaded.decoders[record.topic].decode(record.value)
            for event in loaded.engine.map(value, record).events:
                response = client.post(events_path(event.company_key), content=event.body)
                response.raise_for_status()
                events += 1
            consumer.commit(message=message, asynchronous=False)
            records += 1
        seconds = time.monotonic() - first_record_at
    finally:
        consumer.close()
        client.close()
        loaded.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "records": records,
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds if seconds > 0 else 0.0,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
