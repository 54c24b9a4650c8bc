"""The parked-event format (docs/isolation.md, "Parking"): one record per event of a paused company.

Pure, and the one place that knows a parked record's shape, like
``bridge/receipts.py`` for receipts: :func:`parked_record` writes one (None when
it would not fit its topic), :func:`read_parked` reads one back into the mapped
event it was, refusing anything the bridge did not write. A parked record holds
all that delivering the event later needs without the rules: the exact body, the
company key, event id, event type, rule, priority, ``max_age`` and the source
record's coordinates, timestamp and key. It is keyed by the source record's key,
so one customer's parked events land on one partition of the parked topic, in the
order they were parked; its value is versioned JSON (the body as text: a Vibes
body is JSON, so UTF-8), and the ``bridge.parked.version`` header says which
version without parsing the value.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import orjson

from bridge.dead_letters import LATEST_TIME_MS
from bridge.errors import BridgeError
from bridge.kafka.sizes import record_size
from bridge.mapping.engine import MappedEvent, Priority
from bridge.records import MAX_OFFSET, MAX_PARTITION, SourceRecord
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH
from bridge.written_records import Document, number_field, read_versioned, text_field

VERSION: Final = 1
VERSION_HEADER: Final = "bridge.parked.version"
_HEADERS: Final[list[tuple[str, bytes | None]]] = [(VERSION_HEADER, str(VERSION).encode())]
# Longest text field a parked record read back may hold; anything longer is corrupt.
_READ_LIMIT: Final = 100_000_000
_MAX_AGE_LIMIT: Final = 10.0 * 365 * 24 * 3600

Headers = list[tuple[str, bytes | None]]


class NotParked(BridgeError):
    """A record on the parked topic that the bridge did not write (or that was altered)."""


def parked_record(event: MappedEvent, budget: int) -> tuple[bytes | None, bytes, Headers] | None:
    """The event as a parked Kafka record (key, value, headers); None when it is larger
    than ``budget`` bytes (``bridge.kafka.sizes.record_size``): such an event is not parked
    but waits for its company, as before parking existed."""
    source = event.source
    value: dict[str, Any] = {
        "version": VERSION,
        "company_key": event.company_key,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "metric_event_type": event.metric_event_type,
        "rule": event.rule,
        "priority": event.priority.name.lower(),
        "max_age_seconds": event.max_age_seconds,
        "body": event.body.decode("utf-8", "surrogateescape"),
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
            "key": None if source.key is None else base64.b64encode(source.key).decode("ascii"),
        },
    }
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError:  # a body that is not UTF-8: not parked, it waits
        return None
    record = (source.key, encoded, list(_HEADERS))
    return record if record_size(*record) <= budget else None


def read_parked(value: bytes | None) -> MappedEvent:
    """The mapped event a parked record holds; raises :class:`NotParked` naming what is
    wrong (never quoting a value: a corrupt record could hold anything)."""
    document, source, topic = read_versioned(
        value, version=VERSION, what="parked event", error=NotParked
    )
    priority = _text(document, "priority", 6).upper()
    if priority not in Priority.__members__:
        raise NotParked("priority is not high, normal or low")
    max_age = document.get("max_age_seconds")
    if max_age is not None and (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or not 0 < max_age <= _MAX_AGE_LIMIT
    ):
        raise NotParked("max_age_seconds is not a positive number of seconds")
    timestamp = source.get("timestamp_ms")
    return MappedEvent(
        rule=_text(document, "rule", _READ_LIMIT),
        event_type=_text(document, "event_type", _READ_LIMIT),
        event_id=_text(document, "event_id", MAX_EVENT_ID_LENGTH),
        company_key=_text(document, "company_key", _READ_LIMIT),
        body=_text(document, "body", _READ_LIMIT).encode("utf-8", "surrogateescape"),
        source=SourceRecord(
            topic=topic,
            partition=_number(source, "partition", MAX_PARTITION),
            offset=_number(source, "offset", MAX_OFFSET),
            value=None,
            key=_key(source.get("key")),
            timestamp_ms=None
            if timestamp is None
            else _number(source, "timestamp_ms", LATEST_TIME_MS),
        ),
        metric_event_type=_text(document, "metric_event_type", _READ_LIMIT),
        max_age_seconds=None if max_age is None else float(max_age),
        priority=Priority[priority],
    )


def _key(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise NotParked("source.key is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NotParked("source.key is not base64 text") from None


def _text(document: Document, name: str, limit: int) -> str:
    return text_field(document, name, limit, NotParked)


def _number(document: Document, name: str, largest: int) -> int:
    return number_field(document, name, largest, NotParked)
