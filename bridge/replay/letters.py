"""A dead letter read back as the source record it was (spec section 3, in reverse).

The dead letter keeps the source record's key, value and headers and adds the
``bridge.*`` headers; the source coordinates among them let replay rebuild the
record exactly, so the default event ids (``rule|topic|partition|offset``) equal
the original run's and Vibes ignores an event it already has.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.records import SourceRecord
from bridge.service.dead_letters import (
    BRIDGE_HEADERS,
    CODE,
    REASON,
    RULE,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TIMESTAMP,
    SOURCE_TOPIC,
)


class NotADeadLetter(ValueError):
    """A record on the dead-letter topic that the bridge did not write (or that was altered)."""


@dataclass(frozen=True, slots=True)
class ReplayLetter:
    """One dead letter: where it sits, why it was written, and the record to process again."""

    letter: SourceRecord  # the dead-letter record itself (its topic, partition, offset, time)
    reason: str
    code: str | None
    rule: str | None
    source: SourceRecord  # the original record, rebuilt

    @property
    def written_ms(self) -> int | None:
        """When the letter was written (its Kafka timestamp): what --since/--until compare."""
        return self.letter.timestamp_ms


def read_letter(letter: SourceRecord) -> ReplayLetter:
    """Rebuild the source record of ``letter``; raise NotADeadLetter naming what is missing."""
    bridge = _bridge_headers(letter)
    reason = _required(bridge, REASON)
    topic = _required(bridge, SOURCE_TOPIC)
    timestamp = bridge.get(SOURCE_TIMESTAMP)
    source = SourceRecord(
        topic=topic,
        partition=_integer(SOURCE_PARTITION, _required(bridge, SOURCE_PARTITION)),
        offset=_integer(SOURCE_OFFSET, _required(bridge, SOURCE_OFFSET)),
        value=letter.value,
        key=letter.key,
        timestamp_ms=None if timestamp is None else _integer(SOURCE_TIMESTAMP, timestamp),
        headers=tuple(
            (name, value) for name, value in letter.headers if name not in BRIDGE_HEADERS
        ),
    )
    return ReplayLetter(letter, reason, bridge.get(CODE), bridge.get(RULE), source)


def _bridge_headers(letter: SourceRecord) -> dict[str, str]:
    """The bridge's own headers as text; the last one wins if a name repeats."""
    found: dict[str, str] = {}
    for name, value in letter.headers:
        if name in BRIDGE_HEADERS and value is not None:
            try:
                found[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise NotADeadLetter(f"header {name} is not UTF-8 text") from None
    return found


def _required(headers: dict[str, str], name: str) -> str:
    value = headers.get(name, "")
    if not value:
        raise NotADeadLetter(f"header {name} is missing")
    return value


def _integer(name: str, text: str) -> int:
    # Kafka partitions, offsets and timestamps are never negative.
    if not text.isascii() or not text.isdigit():
        raise NotADeadLetter(f"header {name} is not a non-negative integer")
    return int(text)
