"""The inverse of the Avro decoders: a JSON-friendly document to schemaless Avro bytes.

Not on the bridge's hot path: it serves the demo and the benchmark (which produce
Avro records from the JSON examples in ``schemas/examples/``), and the tests (a
decoded value must encode back to the same bytes' meaning). It accepts exactly the
strings :mod:`bridge.codecs.avro_logical` produces (ISO 8601 timestamps, dates and
times, plain-notation decimals, base64 bytes) and the raw Avro values themselves.

fastavro's writer takes ``datetime``/``Decimal``/``bytes`` objects but not these
strings, hence this schema-directed walk. A union value goes to the first branch
it fits, which is how fastavro's own writer chooses.
"""

from __future__ import annotations

import binascii
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from io import BytesIO
from typing import Any, Final

from fastavro import schemaless_writer

from bridge.codecs.avro_schema import AvroSchema, named_types, resolve, type_name

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
_UNITS: Final = {"millis": 1000, "micros": 1}


class EncodeError(ValueError):
    """The document does not fit the schema; the message names the path, not values."""


class _Mismatch(Exception):
    pass


def encode_avro(schema: AvroSchema, document: Mapping[str, Any]) -> bytes:
    """Schemaless Avro bytes of ``document`` (keys the schema lacks, like
    ``_kafka``, are ignored); raises :class:`EncodeError` when it does not fit."""
    named = named_types(schema)
    try:
        value = _convert(schema, document, named, "")
    except _Mismatch as exc:
        raise EncodeError(f"the document does not fit the schema at {exc}") from None
    out = BytesIO()
    try:
        schemaless_writer(out, schema, value)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise EncodeError(f"fastavro cannot write the document ({type(exc).__name__})") from None
    return out.getvalue()


def _convert(node: Any, value: Any, named: Mapping[str, Any], path: str) -> Any:
    node = resolve(node, named)
    kind = type_name(node)
    if kind == "union":
        for branch in node:
            try:
                return _convert(branch, value, named, path)
            except _Mismatch:
                continue
        raise _Mismatch(path or "the top level")
    if kind in ("record", "error"):
        if not isinstance(value, Mapping):
            raise _Mismatch(path)
        return {
            field["name"]: _convert(field["type"], value[field["name"]], named, _join(path, field))
            for field in node["fields"]
            if field["name"] in value
        }
    if kind == "array" and isinstance(value, list):
        return [_convert(node["items"], item, named, f"{path}[]") for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {k: _convert(node["values"], v, named, f"{path}.*") for k, v in value.items()}
    return _leaf(node, kind, value, path)


def _leaf(node: Any, kind: str, value: Any, path: str) -> Any:
    logical = node.get("logicalType") if isinstance(node, dict) else None
    try:
        if kind == "null" and value is None:
            return None
        if kind == "boolean" and isinstance(value, bool):
            return value
        if kind in ("int", "long") and not isinstance(value, bool):
            return _integer(logical, value)
        if kind in ("float", "double") and type(value) in (int, float):
            return value
        if kind in ("string", "enum") and isinstance(value, str):
            return value
        if kind in ("bytes", "fixed"):
            return _binary(node, logical, value)
    except (ValueError, InvalidOperation, OverflowError, binascii.Error):
        pass
    raise _Mismatch(path or "the top level")


def _integer(logical: Any, value: Any) -> int:
    if type(value) is int:
        return value
    if not isinstance(value, str):
        raise ValueError
    if logical == "date":
        return date.fromisoformat(value).toordinal() - date(1970, 1, 1).toordinal()
    if logical in ("time-millis", "time-micros"):
        moment = time.fromisoformat(value)
        micros = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000
        micros += moment.microsecond
        return micros // 1000 if logical == "time-millis" else micros
    if isinstance(logical, str) and "timestamp-" in logical:
        return _timestamp(logical, value)
    raise ValueError


def _timestamp(logical: str, value: str) -> int:
    unit = logical.rsplit("-", 1)[-1]
    local = logical.startswith("local-")
    if local == value.endswith("Z"):
        raise ValueError  # a UTC timestamp ends in Z, a local one does not
    text = value.removesuffix("Z")
    if unit == "nanos":  # datetime stops at microseconds: split the nine digits off
        text, _, fraction = text.partition(".")
        micros = _timestamp(logical.replace("nanos", "micros"), text + ("" if local else "Z"))
        return micros * 1000 + int(fraction.ljust(9, "0")[:9])
    moment = datetime.fromisoformat(text)
    epoch = _EPOCH_NAIVE if local else _EPOCH
    if not local:
        moment = moment.replace(tzinfo=UTC)
    return (moment - epoch) // timedelta(microseconds=_UNITS[unit])


def _binary(node: Any, logical: Any, value: Any) -> Any:
    if logical == "decimal" and isinstance(value, str):
        exact = Decimal(value)
        scaled = exact.quantize(Decimal(1).scaleb(-int(node.get("scale", 0))))
        if scaled != exact:
            raise ValueError  # more fraction digits than the scale: never round silently
        return scaled
    if logical == "uuid" and isinstance(value, str):
        return uuid.UUID(value).bytes
    if isinstance(value, str):
        return binascii.a2b_base64(value, strict_mode=True)
    if isinstance(value, bytes):
        return value
    raise ValueError


def _join(path: str, field: Mapping[str, Any]) -> str:
    return f"{path}.{field['name']}" if path else str(field["name"])
