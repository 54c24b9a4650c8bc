"""The record stage: a consumed Kafka record as plain data, free of any client library.

Everything after the Kafka edge works on :class:`SourceRecord`, so the engine,
the dry-run commands and the tests never need a broker.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
