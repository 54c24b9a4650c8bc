"""The mapping hot path on one core: decode + match + map + JSON-encode, against its floor.

    .venv/bin/python bench/mapping_hot_path.py [--records 20000] [--rounds 7]

The floor is the least any bridge must do per record: decode it (fastavro or
orjson, with logical types made JSON-friendly) and JSON-encode it. The hot path
is what the bridge does: decode, match the example rules (examples/bridge.yaml),
build each Vibes body and encode it. Both run over the same realistic records
(shipments as schemaless Avro like schemas/examples/shipment_event.json, six line
items; orders as JSON; the same orders as schemaless Protobuf, whose message
tests/codecs/protobuf/order_event.proto decodes to the JSON order's document, so
the same rules apply), alternating in each round; the figures are medians over
rounds, and the ratio is the median of the per-round ratios, so that drift on a
shared machine moves both sides alike. The Protobuf floor decodes with the
bridge's decoder; ``--protobuf-reference`` also times ``json_format.MessageToDict``
on the same messages (docs/codecs.md says why the decoder walks messages itself).

``e164`` (phone-number parsing) is measured apart, as the cost the example rules
add when their ``mdn`` recipients use ``as: e164``: the main figures are for the
example rules with that conversion removed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
from google.protobuf import json_format, message_factory
from ruamel.yaml import YAML

from bridge.codecs import (
    AvroDecoder,
    ConfluentJsonDecoder,
    Decoder,
    JsonDecoder,
    ProtobufDecoder,
    SchemaRegistryClient,
    load_avro_schema,
    load_message_descriptor,
)
from bridge.codecs.registry import JsonSchemaDocument
from bridge.loading import load_bridge
from bridge.mapping.engine import Engine
from bridge.records import SourceRecord

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # devtools/ is used from the checkout: it is not installed

from devtools.avro_encode import encode_avro  # noqa: E402

EXAMPLE_CONFIG = REPO / "examples" / "bridge.yaml"
SHIPMENT_SCHEMA = REPO / "schemas" / "shipment_event.avsc"
SHIPMENT_EXAMPLE = REPO / "schemas" / "examples" / "shipment_event.json"
ORDER_EXAMPLE = REPO / "schemas" / "examples" / "order_event.json"
ORDER_DESCRIPTOR_SET = REPO / "tests" / "codecs" / "protobuf" / "order_event.desc"

SHIPMENT_STATUSES = ("SHIPPED", "OUT_FOR_DELIVERY", "DELIVERED", "IN_TRANSIT")
ORDER_STATUSES = ("CONFIRMED", "CANCELLED", "PLACED")


@dataclass(frozen=True)
class Workload:
    """Encoded records of one topic, their coordinates, and the decoder for them."""

    name: str
    decoder: Decoder
    records: list[SourceRecord]


def shipment_workload(count: int) -> Workload:
    """``count`` shipments as schemaless Avro, keyed by shipment id as a shop would key them."""
    schema = load_avro_schema(SHIPMENT_SCHEMA)
    example = json.loads(SHIPMENT_EXAMPLE.read_text(encoding="utf-8"))
    records = []
    for index in range(count):
        document = copy.deepcopy(example)
        document["shipment_id"] = f"SHP-{index:08d}"
        document["status"] = SHIPMENT_STATUSES[index % len(SHIPMENT_STATUSES)]
        document["customer"]["id"] = f"CUST-{index % 5000:05d}"
        value = encode_avro(schema, document)
        records.append(_record("shop.shipments", index, value, document["shipment_id"]))
    return Workload("shipments (Avro)", AvroDecoder(schema), records)


def _order_documents(count: int) -> Iterator[dict[str, Any]]:
    """The example order ``count`` times, each with its own id; the statuses cycle."""
    example = json.loads(ORDER_EXAMPLE.read_text(encoding="utf-8"))
    for index in range(count):
        document = copy.deepcopy(example)
        document["order_id"] = f"ORD-{index:08d}"
        document["status"] = ORDER_STATUSES[index % len(ORDER_STATUSES)]
        yield document


def order_workload(count: int) -> Workload:
    """``count`` orders as JSON, keyed by order id; the statuses cycle so some match no rule."""
    records = []
    for index, document in enumerate(_order_documents(count)):
        value = orjson.dumps(document)
        records.append(_record("shop.orders", index, value, document["order_id"]))
    return Workload("orders (JSON)", JsonDecoder(), records)


def protobuf_order_workload(count: int) -> Workload:
    """The JSON orders as schemaless Protobuf (shop.bench.OrderEvent), on the same topic."""
    descriptor = load_message_descriptor(ORDER_DESCRIPTOR_SET, "shop.bench.OrderEvent")
    message_class = message_factory.GetMessageClass(descriptor)
    records = []
    for index, document in enumerate(_order_documents(count)):
        message = json_format.ParseDict(_without_nulls(document), message_class())
        value = message.SerializeToString()
        records.append(_record("shop.orders", index, value, document["order_id"]))
    return Workload("orders (Protobuf)", ProtobufDecoder(descriptor), records)


def _without_nulls(value: Any) -> Any:
    """JSON nulls are unset fields in Protobuf."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def message_to_dict_seconds(workload: Workload, rounds: int) -> tuple[float, float]:
    """Median seconds per record of the bridge's decoder and of parse + MessageToDict
    (int64 would still be strings there), over the Protobuf workload's records."""
    decoder = workload.decoder
    assert isinstance(decoder, ProtobufDecoder)
    message_class = message_factory.GetMessageClass(decoder.descriptor)
    values = [record.value for record in workload.records if record.value is not None]

    def library() -> int:
        for value in values:
            json_format.MessageToDict(
                message_class.FromString(value), preserving_proto_field_name=True
            )
        return len(values)

    def bridge() -> int:
        for value in values:
            decoder.decode(value)
        return len(values)

    bridge(), library()
    ours = statistics.median(_seconds(bridge) for _ in range(rounds)) / len(values)
    theirs = statistics.median(_seconds(library) for _ in range(rounds)) / len(values)
    return ours, theirs


# The JSON order's shape as a JSON Schema, for the confluent-json validation figure.
ORDER_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "status": {"enum": ["PLACED", "CONFIRMED", "CANCELLED"]},
        "customer": {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "phone": {"type": "string"},
                "sms_opt_in": {"type": "boolean"},
            },
            "required": ["id"],
        },
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer"}},
            },
        },
        "total": {"type": "string"},
    },
    "required": ["order_id", "customer"],
}


class _OneSchemaRegistry:
    """Stands for the registry client: every id is ORDER_JSON_SCHEMA (no HTTP in a
    CPU benchmark; the client's cache makes a real one cost nothing per record)."""

    def json_schema(self, schema_id: int) -> JsonSchemaDocument:
        return JsonSchemaDocument(ORDER_JSON_SCHEMA, {})


def json_validation_seconds(count: int, rounds: int) -> tuple[float, float]:
    """Median seconds per record of confluent-json without and with ``validate``."""
    example = orjson.dumps(json.loads(ORDER_EXAMPLE.read_text(encoding="utf-8")))
    values = [b"\x00\x00\x00\x00\x01" + example] * count
    registry = cast(SchemaRegistryClient, _OneSchemaRegistry())
    medians = []
    for validate in (False, True):
        decoder = ConfluentJsonDecoder(registry, validate=validate)

        def run(decode: Callable[[bytes], Any] = decoder.decode) -> int:
            for value in values:
                decode(value)
            return count

        run()
        medians.append(statistics.median(_seconds(run) for _ in range(rounds)) / count)
    return medians[0], medians[1]


def _record(topic: str, offset: int, value: bytes, key: str) -> SourceRecord:
    return SourceRecord(
        topic=topic, partition=0, offset=offset, value=value, key=key.encode(), timestamp_ms=0
    )


def _engine(*, with_e164: bool, workdir: Path) -> Engine:
    """The example rules; without ``as: e164`` unless asked (the figure the goal is about)."""
    yaml = YAML(typ="rt")
    document = yaml.load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    for source in document["sources"]:
        if "schema" in source:
            source["schema"] = str((EXAMPLE_CONFIG.parent / source["schema"]).resolve())
    if not with_e164:
        for rule in document["rules"]:
            mdn = rule["recipient"].get("mdn")
            if isinstance(mdn, dict):
                rule["recipient"]["mdn"] = mdn["path"]
    path = workdir / ("with-e164.yaml" if with_e164 else "without-e164.yaml")
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(document, stream)
    return load_bridge(path, {}).engine


def _floor(workload: Workload) -> Callable[[], int]:
    decode, records, dumps = workload.decoder.decode, workload.records, orjson.dumps

    def run() -> int:
        for record in records:
            dumps(decode(record.value))
        return len(records)

    return run


def _hot_path(workload: Workload, engine: Engine) -> Callable[[], int]:
    decode, records, map_record = workload.decoder.decode, workload.records, engine.map

    def run() -> int:
        events = 0
        for record in records:
            events += len(map_record(decode(record.value), record).events)
        return events

    return run


def _seconds(run: Callable[[], int]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _measure(workload: Workload, engines: dict[str, Engine], rounds: int) -> dict[str, Any]:
    runs: dict[str, Callable[[], int]] = {"floor": _floor(workload)}
    runs.update({name: _hot_path(workload, engine) for name, engine in engines.items()})
    for run in runs.values():
        run()  # warm caches and lazy imports before timing
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_number in range(rounds):
        order = list(runs) if round_number % 2 == 0 else list(reversed(runs))
        for name in order:
            times[name].append(_seconds(runs[name]))
    count = len(workload.records)
    result: dict[str, Any] = {"workload": workload.name, "records": count, "times": times}
    for name, samples in times.items():
        result[f"{name}_records_per_s"] = count / statistics.median(samples)
    for name in engines:
        ratios = [hot / floor for hot, floor in zip(times[name], times["floor"], strict=True)]
        result[f"{name}_ratio"] = statistics.median(ratios)
    result["events_per_record"] = _hot_path(workload, engines["rules"])() / count
    if "rules+e164" in engines:
        per_record = statistics.median(
            (with_e164 - without) / count
            for with_e164, without in zip(times["rules+e164"], times["rules"], strict=True)
        )
        result["e164_extra_us_per_record"] = per_record * 1e6
    return result


def _combined(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Both topics at one record each: per round, the summed times of every workload."""
    count = sum(result["records"] for result in results)
    rounds = len(results[0]["times"]["floor"])
    totals = {
        name: [sum(r["times"][name][i] for r in results) for i in range(rounds)]
        for name in results[0]["times"]
    }
    combined: dict[str, Any] = {"workload": "both, one record each", "records": count}
    combined["times"] = totals
    for name, samples in totals.items():
        combined[f"{name}_records_per_s"] = count / statistics.median(samples)
    ratios = [hot / floor for hot, floor in zip(totals["rules"], totals["floor"], strict=True)]
    combined["rules_ratio"] = statistics.median(ratios)
    combined["events_per_record"] = (
        sum(r["events_per_record"] * r["records"] for r in results) / count
    )
    extra = [(e - r) / count for e, r in zip(totals["rules+e164"], totals["rules"], strict=True)]
    combined["e164_extra_us_per_record"] = statistics.median(extra) * 1e6
    return combined


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per workload")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (median taken)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--protobuf-reference",
        action="store_true",
        help="also time json_format.MessageToDict against the Protobuf decoder",
    )
    parser.add_argument(
        "--json-validation",
        action="store_true",
        help="also time confluent-json decoding without and with validate: true",
    )
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the goal says
    with tempfile.TemporaryDirectory() as workdir:
        engines = {
            "rules": _engine(with_e164=False, workdir=Path(workdir)),
            "rules+e164": _engine(with_e164=True, workdir=Path(workdir)),
        }
        workloads = (
            shipment_workload(args.records),
            order_workload(args.records),
            protobuf_order_workload(args.records),
        )
        results = [_measure(workload, engines, args.rounds) for workload in workloads]
    # "both": the original two topics, so the figure stays comparable with earlier runs.
    results.append(_combined(results[:2]))
    if args.protobuf_reference:
        ours, theirs = message_to_dict_seconds(workloads[2], args.rounds)
        print(f"protobuf decode: bridge {ours * 1e6:.2f} µs/record,", end=" ")
        print(f"parse + MessageToDict {theirs * 1e6:.2f} µs/record")
    if args.json_validation:
        plain, validated = json_validation_seconds(min(args.records, 5_000), args.rounds)
        print(f"confluent-json decode: {plain * 1e6:.2f} µs/record,", end=" ")
        print(f"with validate: {validated * 1e6:.2f} µs/record")
    for result in results:
        result.pop("times")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    columns = ["workload", "floor rec/s", "rules rec/s", "ratio", "rules+e164 rec/s"]
    columns += ["e164 µs/record", "events/record"]
    print("| " + " | ".join(columns) + " |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['workload']} | {r['floor_records_per_s']:,.0f} | {r['rules_records_per_s']:,.0f}"
            f" | {r['rules_ratio']:.2f} | {r['rules+e164_records_per_s']:,.0f}"
            f" | {r['e164_extra_us_per_record']:.1f} | {r['events_per_record']:.2f} |"
        )


if __name__ == "__main__":
    main()
