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
    age_limits: bool = True,
) -> PreparedRecord:
    """The record's events and dead letters (raises only ``SchemaRegistryUnavailable``).

    ``trace`` is the record's trace when tracing is on: its events carry it. An event
    older than its rule's ``max_age`` (else ``max_event_age_seconds``) is an
    ``expired`` dead letter instead; ``age_limits=False`` (replay) applies neither.
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
    events = result.events
    if events and age_limits and record.timestamp_ms is not None:
        age_ms = now_ms - record.timestamp_ms
        kept: list[MappedEvent] = []
        for event in events:
            if _too_old(event, age_ms, max_event_age_seconds):
                letters += (_expired(record, event),)
            else:
                kept.append(event)
        events = tuple(kept)
    return PreparedRecord(record, events, letters, True)


def _too_old(event: MappedEvent, age_ms: int, max_event_age_seconds: float | None) -> bool:
    """Older than the event's rule's ``max_age``, or else ``delivery.max_event_age``."""
    limit = event.max_age_seconds if event.max_age_seconds is not None else max_event_age_seconds
    return limit is not None and age_ms > limit * 1000


def _expired(record: SourceRecord, event: MappedEvent) -> DeadLetter:
    which = "its rule's max_age" if event.max_age_seconds is not None else "delivery.max_event_age"
    error = EventExpired(ExpiryCode.MAX_EVENT_AGE, f"the record is older than {which}: not sent")
    return dead_letter(record, error, rule=event.rule)
