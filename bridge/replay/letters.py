"""A dead letter read back as the source record it was (spec section 3, in reverse).

The dead letter keeps the source record's key, value and headers and adds the
``bridge.*`` headers; the source coordinates among them let replay rebuild the
record exactly, so the default event ids (``rule|topic|partition|offset``) equal
the original run's and Vibes ignores an event it already has. The headers are
read by the module that writes them (:func:`bridge.dead_letters.read_dead_letter`),
which refuses coordinates Kafka could not hold; the callback receiver's
``invalid_callback`` letters were never source records and are read with no source.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.dead_letters import NotADeadLetter, read_dead_letter, source_headers
from bridge.errors import DeadLetterReason
from bridge.records import SourceRecord

__all__ = ["NotADeadLetter", "ReplayLetter", "read_letter"]


@dataclass(frozen=True, slots=True)
class ReplayLetter:
    """One dead letter: where it sits, why it was written, and the record to process again.

    ``source`` is None for the receiver's ``invalid_callback`` letters: their value
    is a body Vibes posted, not a record of a source topic, so there is nothing to
    process again.
    """

    letter: SourceRecord  # the dead-letter record itself (its topic, partition, offset, time)
    reason: DeadLetterReason
    code: str | None
    rule: str | None
    source: SourceRecord | None  # the original record, rebuilt
    cut: tuple[str, ...] = ()
    """The cut marks the letter carries (``bridge.error.value_truncated`` ...): the
    bytes are not the record's any more, so replay must not send them."""

    @property
    def written_ms(self) -> int | None:
        """When the letter was written (its Kafka timestamp): what --since/--until compare."""
        return self.letter.timestamp_ms

    @property
    def source_topic(self) -> str | None:
        return None if self.source is None else self.source.topic


def read_letter(letter: SourceRecord) -> ReplayLetter:
    """Rebuild the source record of ``letter``; raise NotADeadLetter naming what is wrong."""
    read = read_dead_letter(letter.key, letter.value, letter.headers)
    source = None
    if read.source is not None:
        source = SourceRecord(
            topic=read.source.topic,
            partition=read.source.partition,
            offset=read.source.offset,
            value=letter.value,
            key=letter.key,
            timestamp_ms=read.source.timestamp_ms,
            headers=tuple(source_headers(letter.headers)),
        )
    return ReplayLetter(letter, read.reason, read.code, read.rule, source, read.cut)
