"""Decode, match and map one record, and decide what it needs: the pure middle of the path.

``prepare`` turns a consumed record into its work: the events to deliver and the
dead letters to write (a decode error, a rule that could not map it, or a record
too old to text anyone about). It does no I/O and knows nothing of Kafka's or
HTTP's clients, so it is tested with plain records. The one exception it lets
through is :class:`~bridge.errors.SchemaRegistryUnavailable`: a registry outage
says nothing about the record, so the caller retries the record later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from bridge.codecs import Decoder
from bridge.dead_letters import DeadLetter, dead_letter
from bridge.errors import DecodeCode, DecodeError, EventExpired, ExpiryCode, RecordError
from bridge.mapping.engine import Engine, MappedEvent
from bridge.records import SourceRecord, TraceIds


class PreparedRecord(NamedTuple):
    """Everything one record asks for; no events and no dead letters means skipped."""

    record: SourceRecord
    events: tuple[MappedEvent, ...]
    dead_letters: tuple[DeadLetter, ...]
    matched: bool

    @property
    def units(self) -> int:
        """Pieces of work that must finish before the record's offset can be committed."""
        return len(self.events) + len(self.dead_letters)

    def only(
        self, events: tuple[MappedEvent, ...], dead_letters: tuple[DeadLetter, ...]
    ) -> PreparedRecord:
        """The same record asking only for ``events`` and ``dead_letters`` (replay's scope)."""
        return PreparedRecord(self.record, events, dead_letters, bool(events or dead_letters))


def prepare(
    record: SourceRecord,
    decoders: Mapping[str, Decoder],
    engine: Engine,
    *,
    max_event_age_seconds: float | None,
    now_ms: int,
    trace: TraceIds | None = None,
) -> PreparedRecord:
    """The record's events and dead letters (raises only ``SchemaRegistryUnavailable``).

    ``trace`` is the record's trace when tracing is on: its events carry it.
    """
    decoder = decoders.get(record.topic)
    if decoder is None:  # a live reload removed the source; the subscription stays until restart
        error: RecordError = DecodeError(
            DecodeCode.NO_SOURCE, "the topic has no source in the configuration"
        )
        return PreparedRecord(record, (), (dead_letter(record, error),), True)
    try:
        value = decoder.decode(record.value)
    except DecodeError as exc:
        return PreparedRecord(record, (), (dead_letter(record, exc),), True)
    result = engine.map(value, record, trace)
    if not result.matched:
        return PreparedRecord(record, (), (), False)
    letters = tuple(
        dead_letter(record, failure.error, rule=failure.rule) for failure in result.failures
    )
    if result.events and _too_old(record, max_event_age_seconds, now_ms):
        expired = EventExpired(
            ExpiryCode.MAX_EVENT_AGE, "the record is older than delivery.max_event_age: not sent"
        )
        letters += tuple(dead_letter(record, expired, rule=event.rule) for event in result.events)
        return PreparedRecord(record, (), letters, True)
    return PreparedRecord(record, result.events, letters, True)


def _too_old(record: SourceRecord, max_age_seconds: float | None, now_ms: int) -> bool:
    if max_age_seconds is None or record.timestamp_ms is None:
        return False
    return now_ms - record.timestamp_ms > max_age_seconds * 1000
