"""The cost of tracing on the per-record path, off and on, in CPU time per record.

    .venv/bin/python bench/tracing_cost.py [--records 5000] [--rounds 7]

What the service does per record and per delivery attempt, without Kafka or HTTP:
decode and map a JSON order (one rule, ``{trace: ...}`` in its ``debug_data``)
with ``stages.prepare``, and for each event one attempt's span. Variants,
alternating in each round (medians over rounds; CPU time of the whole process,
so the batch exporter's thread is counted):

- ``baseline``: ``prepare`` alone, no tracing call at all (the code before tracing);
- ``off``: the calls the service makes with tracing off (``NO_TRACING``);
- ``on``: OpenTelemetry's SDK, every span sampled, exported in batches over
  OTLP/HTTP to a real receiver (``tests/support/otlp.py``) in another process;
- ``on, ratio 0``: tracing on, no trace sampled (``sample_ratio: 0``, and the
  records' ``traceparent`` headers say "not sampled"): the price of being ready.

Half of the records carry a W3C ``traceparent`` header (parsed; "sampled" except in
the last variant); the others start a trace. The exporter's queue is made large
enough that no span is dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Before the SDK is imported: a queue that holds every span of a round.
os.environ.setdefault("OTEL_BSP_MAX_QUEUE_SIZE", "65536")

from bridge.config.model import TracingSettings  # noqa: E402
from bridge.delivery.outcomes import Delivered  # noqa: E402
from bridge.loading import LoadedBridge, load_bridge  # noqa: E402
from bridge.records import SourceRecord  # noqa: E402
from bridge.service.stages import prepare  # noqa: E402
from bridge.tracing import NO_TRACING, Tracing, start_tracing  # noqa: E402
from tests.support.otlp import receiver_process  # noqa: E402

CONFIG = """\
version: 1
vibes: {company_key: demo, username: u, password: p, base_url: "http://127.0.0.1:9"}
sources: [{topic: shop.orders, format: json}]
rules:
  - name: order-update
    topic: shop.orders
    event_type: order_update
    recipient: {external_person_id: customer.id}
    event_data:
      order_id: order_id
      first_name: customer.first_name
      total: {path: total, as: number}
      items: {path: "length(items)", default: 0}
    debug_data:
      rule: {value: order-update}
      trace_id: {trace: trace_id}
      traceparent: {trace: traceparent}
"""
DELIVERED = Delivered(200, attempts=1)
Run = Callable[[LoadedBridge, list[SourceRecord]], None]


def records(count: int, *, sampled: bool = True) -> list[SourceRecord]:
    made = []
    for number in range(count):
        value = {
            "order_id": f"o-{number}",
            "total": "19.99",
            "customer": {"id": f"c-{number % 97}", "first_name": "Ann"},
            "items": [{"sku": "a"}, {"sku": "b"}],
        }
        headers: tuple[tuple[str, bytes | None], ...] = ()
        if number % 2:
            parent = f"00-{number:032x}-{number + 1:016x}-{'01' if sampled else '00'}"
            headers = (("traceparent", parent.encode()),)
        made.append(SourceRecord("shop.orders", 0, number, orjson.dumps(value), headers=headers))
    return made


def baseline(loaded: LoadedBridge, batch: list[SourceRecord]) -> None:
    for record in batch:
        prepare(record, loaded.decoders, loaded.engine, max_event_age_seconds=None, now_ms=0)


def traced(tracing: Tracing) -> Run:
    def run(loaded: LoadedBridge, batch: list[SourceRecord]) -> None:
        for record in batch:
            span = tracing.record_started(record)
            prepared = prepare(
                record,
                loaded.decoders,
                loaded.engine,
                max_event_age_seconds=None,
                now_ms=0,
                trace=span.ids,
            )
            span.finished(prepared)
            for event in prepared.events:
                attempt = tracing.attempt_started(event, 1)
                if attempt is not None:
                    attempt.finished(DELIVERED)

    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=5000, help="records per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with receiver_process() as endpoint, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bridge.yaml"
        path.write_text(CONFIG)
        loaded = load_bridge(path)
        on = start_tracing(
            TracingSettings(enabled=True, endpoint=endpoint),
            vibes_base_url="http://v",
            group_id="g",
        )
        unsampled = start_tracing(
            TracingSettings(enabled=True, endpoint=endpoint, sample_ratio=0.0),
            vibes_base_url="http://v",
            group_id="g",
        )
        batch, unsampled_batch = records(args.records), records(args.records, sampled=False)
        variants: dict[str, tuple[Run, Tracing, list[SourceRecord]]] = {
            "baseline": (baseline, NO_TRACING, batch),
            "off": (traced(NO_TRACING), NO_TRACING, batch),
            "on": (traced(on), on, batch),
            "on, ratio 0": (traced(unsampled), unsampled, unsampled_batch),
        }
        for run, _, records_of in variants.values():  # warm-up: imports, caches, connections
            run(loaded, records_of[:500])
        timings: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (run, tracing, records_of) in variants.items():
                started = time.process_time()
                run(loaded, records_of)
                tracing.flush(30.0)  # the exporter's work for this round counts too
                timings[name].append((time.process_time() - started) / len(batch) * 1e6)
        on.shutdown(10)
        unsampled.shutdown(10)
        base = statistics.median(timings["baseline"])
        print(f"{args.records} records x {args.rounds} rounds; CPU µs per record (median)")
        print(f"{'variant':<14} {'µs/record':>10} {'vs baseline':>12}")
        for name, values in timings.items():
            median = statistics.median(values)
            print(f"{name:<14} {median:>10.1f} {median / base:>11.2f}x")


if __name__ == "__main__":
    main()
