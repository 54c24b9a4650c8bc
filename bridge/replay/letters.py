"""A dead letter read back as the source record it was (spec section 3, in reverse).

The dead letter keeps the source record's key, value and headers and adds the
``bridge.*`` headers; the source coordinates among them let replay rebuild the
record exactly, so the default event ids (``rule|topic|partition|offset``) equal
the original run's and Vibes ignores an event it already has.

Headers are input like any other: a letter whose coordinates Kafka could not
hold (a partition past int32, a negative offset, a timestamp past year 9999) is
refused, never rebuilt, because a rebuilt record would carry a new event id and
be sent as a new event. The callback receiver's ``invalid_callback`` letters
were never source records: they are read as such, with no source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from bridge.dead_letters import (
    BRIDGE_HEADERS,
    CODE,
    CUT_MARKS,
    REASON,
    RULE,
    SOURCE_OFFSET,
    SOURCE_PARTITION,
    SOURCE_TIMESTAMP,
    SOURCE_TOPIC,
)
from bridge.errors import DeadLetterReason
from bridge.records import MAX_OFFSET, MAX_PARTITION, SourceRecord

# 9999-12-31T23:59:59.999Z: the last millisecond Python's datetime (and ISO 8601's
# four-digit years) can show. Later "times" are corrupt headers, not records.
LATEST_TIME_MS: Final = 253_402_300_799_999
# Kafka's rule for topic names (its Topic.validate): at most 249 of these characters.
_TOPIC_NAME: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")
# The widest bound has 19 digits; longer text is out of range before int() reads it
# (int() of thousands of digits is slow, and past 4300 it raises an unrelated error).
_MAX_DIGITS: Final = len(str(MAX_OFFSET))


class NotADeadLetter(ValueError):
    """A record on the dead-letter topic that the bridge did not write (or that was altered)."""


@dataclass(frozen=True, slots=True)
class ReplayLetter:
    """One dead letter: where it sits, why it was written, and the record to process again.

    ``source`` is None for the receiver's ``invalid_callback`` letters: their value
    is a body Vibes posted, not a record of a source topic, so there is nothing to
    process again.
    """

    letter: SourceRecord  # the dead-letter record itself (its topic, partition, offset, time)
    reason: str
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
    bridge = _bridge_headers(letter)
    reason = _required(bridge, REASON)
    if reason == DeadLetterReason.INVALID_CALLBACK:
        return ReplayLetter(letter, reason, bridge.get(CODE), None, None)
    timestamp = bridge.get(SOURCE_TIMESTAMP)
    source = SourceRecord(
        topic=_topic(_required(bridge, SOURCE_TOPIC)),
        partition=_integer(SOURCE_PARTITION, _required(bridge, SOURCE_PARTITION), MAX_PARTITION),
        offset=_integer(SOURCE_OFFSET, _required(bridge, SOURCE_OFFSET), MAX_OFFSET),
        value=letter.value,
        key=letter.key,
        timestamp_ms=(
            None if timestamp is None else _integer(SOURCE_TIMESTAMP, timestamp, LATEST_TIME_MS)
        ),
        headers=tuple(
            (name, value) for name, value in letter.headers if name not in BRIDGE_HEADERS
        ),
    )
    cut = tuple(name for name in CUT_MARKS if name in bridge)
    return ReplayLetter(letter, reason, bridge.get(CODE), bridge.get(RULE), source, cut)


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


def _topic(text: str) -> str:
    if _TOPIC_NAME.fullmatch(text) is None:
        raise NotADeadLetter(f"header {SOURCE_TOPIC} is not a Kafka topic name")
    return text


def _integer(name: str, text: str, largest: int) -> int:
    """``text`` as an integer in [0, largest]: Kafka's range for that coordinate."""
    # isdigit() alone takes other scripts' digits ("\u0661") and superscripts ("\u00b2").
    if not text.isascii() or not text.isdigit():
        raise NotADeadLetter(f"header {name} is not a non-negative integer")
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS or int(digits) > largest:
        raise NotADeadLetter(f"header {name} is out of range (0 to {largest})")
    return int(digits)
