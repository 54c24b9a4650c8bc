"""A consumed confluent-kafka message as a :class:`~bridge.records.SourceRecord`.

Strict on purpose: a message without a topic, partition or offset is refused
rather than given 0, because committing offset 0 would rewind the whole group.
"""

from __future__ import annotations

from confluent_kafka import Message

from bridge.errors import KafkaFailure
from bridge.records import SourceRecord


class MalformedMessage(KafkaFailure):
    """A message from the client that lacks its coordinates (never expected from a fetch)."""


def to_source_record(message: Message) -> SourceRecord:
    """Copy what the bridge needs out of a message (call only for messages without error)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None or offset < 0:
        raise MalformedMessage("a consumed message has no topic, partition or offset")
    _kind, timestamp = message.timestamp()
    return SourceRecord(
        topic=topic,
        partition=partition,
        offset=offset,
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
