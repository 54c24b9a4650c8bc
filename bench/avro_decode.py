"""The Avro decoder against fastavro alone, on the demo's shipment record (one core).

    .venv/bin/python bench/avro_decode.py [--records 20000] [--rounds 7]

Three ways to get a JSON body from the same 449-byte record, each ending in an
orjson encode: fastavro with its own logical types (``datetime``/``Decimal``
objects, made JSON-friendly by orjson's ``default=str``), fastavro with the
logical types stripped (no conversion at all: the lower bound), and
:class:`bridge.codecs.AvroDecoder`. Medians of rounds, in µs per record.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from fastavro import parse_schema, schemaless_reader

from bridge.codecs import AvroDecoder, load_avro_schema
from bridge.codecs.avro_plan import reading_schema

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # devtools/ is used from the checkout: it is not installed

from devtools.avro_encode import encode_avro  # noqa: E402


def _time(run: Callable[[bytes], Any], data: bytes, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        run(data)
    return (time.perf_counter() - started) / count * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    schema = load_avro_schema(REPO / "schemas" / "shipment_event.avsc")
    example = json.loads((REPO / "schemas" / "examples" / "shipment_event.json").read_text())
    data = encode_avro(schema, example)
    with_logical = parse_schema(json.loads((REPO / "schemas" / "shipment_event.avsc").read_text()))
    stripped = reading_schema(schema)
    decoder = AvroDecoder(schema)
    runs: dict[str, Callable[[bytes], Any]] = {
        "fastavro with its logical types": lambda raw: orjson.dumps(
            schemaless_reader(io.BytesIO(raw), with_logical, None), default=str
        ),
        "fastavro, no conversion (lower bound)": lambda raw: orjson.dumps(
            schemaless_reader(io.BytesIO(raw), stripped, None), default=str
        ),
        "bridge AvroDecoder": lambda raw: orjson.dumps(decoder.decode(raw)),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            samples[name].append(_time(run, data, args.records))
    print(f"record: {len(data)} bytes; median of {args.rounds} rounds of {args.records}")
    print("| path | µs per record | records/s |")
    print("| --- | ---: | ---: |")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.1f} | {1e6 / median:,.0f} |")


if __name__ == "__main__":
    main()
