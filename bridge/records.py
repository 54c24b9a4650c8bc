"""The record stage: a consumed Kafka record as plain data, free of any client library.

Everything after the Kafka edge works on :class:`SourceRecord`, so the engine,
the dry-run commands and the tests never need a broker. The record's metadata as
rules read it, the reserved ``_kafka`` key of the record document (spec section 1),
is defined here too, once: :data:`KAFKA_KEY`, its shape :class:`KafkaDocument` and
:func:`kafka_document`. The engine adds it; the load-time schema check
(``bridge.mapping.avro_paths``) derives the names it accepts from the same shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, NamedTuple, TypedDict

# Kafka's own bounds: partitions are int32, offsets and timestamps int64.
MAX_PARTITION: Final = 2**31 - 1
MAX_OFFSET: Final = 2**63 - 1
MAX_TIMESTAMP: Final = 2**63 - 1
# Kafka's rule for topic names (kafka.common.internals.Topic): 1 to 249 of these
# characters, and not "." or "..".
_TOPIC_NAME: Final = re.compile(r"[a-zA-Z0-9._-]{1,249}")


Partition = tuple[str, int]
"""A (topic, partition number) pair: the one name for it in the bridge."""


class Position(NamedTuple):
    """A group's position in a partition: the next offset to read, and the commit's metadata.

    The metadata is the text stored with the commit (empty when none); the
    bridge's own format is in ``bridge/service/commit_metadata.py``.
    """

    offset: int
    metadata: str = ""


def is_topic_name(text: str) -> bool:
    """Whether Kafka accepts ``text`` as a topic name."""
    return _TOPIC_NAME.fullmatch(text) is not None and text not in (".", "..")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record as consumed: coordinates, key, value bytes and headers."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = field(default_factory=tuple)


class TraceIds(NamedTuple):
    """The trace a record's processing belongs to, as plain text (``bridge/tracing``
    makes it when tracing is on): what a rule's ``debug_data`` may carry to Vibes and
    back, and what each delivery attempt's span takes as its parent."""

    trace_id: str
    """32 lowercase hex digits: what a trace backend searches by."""
    traceparent: str
    """The W3C ``traceparent`` of the record's span."""


KAFKA_KEY: Final = "_kafka"
"""The reserved key of the record document; it hides a record field of that name."""


class KafkaDocument(TypedDict):
    """What ``_kafka`` holds: text is decoded as UTF-8 (invalid bytes replaced)."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp: int | None  # milliseconds since the epoch
    headers: dict[str, str]  # a header without a value reads as ""


def kafka_document(record: SourceRecord) -> KafkaDocument:
    """The ``_kafka`` value for ``record``."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "timestamp": record.timestamp_ms,
        "headers": {
            name: "" if raw is None else raw.decode("utf-8", "replace")
            for name, raw in record.headers
        },
    }
