"""A consumed confluent-kafka message as a :class:`~bridge.records.SourceRecord`."""

from __future__ import annotations

from confluent_kafka import Message

from bridge.records import SourceRecord


def to_source_record(message: Message) -> SourceRecord:
    """Copy what the bridge needs out of a message (call only for messages without error)."""
    _kind, timestamp = message.timestamp()
    return SourceRecord(
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        value=message.value(),
        key=message.key(),
        timestamp_ms=timestamp if timestamp >= 0 else None,
        headers=_headers(message),
    )


def _headers(message: Message) -> tuple[tuple[str, bytes | None], ...]:
    raw = message.headers() or ()
    pairs = raw.items() if isinstance(raw, dict) else raw
    return tuple(
        (name, value.encode("utf-8") if isinstance(value, str) else value) for name, value in pairs
    )
