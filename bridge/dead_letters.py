"""The dead-letter format (spec section 3): the source record unchanged, plus why.

Pure, and the one place that knows the ``bridge.*`` headers: :func:`dead_letter`
writes a letter for a failed record, :func:`invalid_callback_letter` one for a
body the callback receiver could not read, :func:`fit_letter` cuts one to fit its
topic, and :func:`read_dead_letter` reads any of them back into the same
:class:`DeadLetter`, so replay, its report and its scope use typed fields and
never parse headers themselves. The value and key are the source record's
bytes, its headers are kept, and the bridge's headers say what went wrong and
where the record came from, so that an operator (and ``vibes-bridge replay``) can
act on it without the original topic. Messages come from the error tree, whose
messages never hold person data.

Headers read back are input like any other: a letter whose coordinates Kafka
could not hold (a partition past int32, a negative offset, a timestamp past year
9999) is refused, never rebuilt, because a rebuilt record would carry a new
event id and be sent as a new event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from bridge.errors import (
    BridgeError,
    DeadLetterReason,
    DecodeCode,
    EventRejected,
    MappingCode,
    RecordError,
)
from bridge.kafka.sizes import headers_size, record_size
from bridge.records import MAX_OFFSET, MAX_PARTITION, SourceRecord, is_topic_name
from bridge.vibes.api import ERROR_RESPONSE_LIMIT, one_line
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH

REASON_HEADER: Final = "bridge.error.reason"
MESSAGE_HEADER: Final = "bridge.error.message"
CODE_HEADER: Final = "bridge.error.code"
SOURCE_TOPIC_HEADER: Final = "bridge.source.topic"
SOURCE_PARTITION_HEADER: Final = "bridge.source.partition"
SOURCE_OFFSET_HEADER: Final = "bridge.source.offset"
SOURCE_TIMESTAMP_HEADER: Final = "bridge.source.timestamp"
RULE_HEADER: Final = "bridge.rule"
HTTP_STATUS_HEADER: Final = "bridge.http.status"
RESPONSE_HEADER: Final = "bridge.error.response"
ATTEMPTS_HEADER: Final = "bridge.attempts"
# On letters of events Vibes rejected or that expired: the event's id, so that
# `vibes-bridge explain --event-id` finds the letter.
EVENT_ID_HEADER: Final = "bridge.event_id"
# Set only on a letter cut to fit the dead-letter topic (docs/running.md, "Size bounds"):
# the original value or key size in bytes, the number of source headers dropped. The
# coordinates say where the full record is while the source topic retains it.
VALUE_TRUNCATED_HEADER: Final = "bridge.error.value_truncated"
KEY_TRUNCATED_HEADER: Final = "bridge.error.key_truncated"
HEADERS_DROPPED_HEADER: Final = "bridge.error.headers_dropped"
# A letter with any of these is not the whole record: replay refuses to send it.
CUT_MARKS: Final = (VALUE_TRUNCATED_HEADER, KEY_TRUNCATED_HEADER, HEADERS_DROPPED_HEADER)

BRIDGE_HEADERS: Final = frozenset(
    {
        REASON_HEADER,
        MESSAGE_HEADER,
        CODE_HEADER,
        SOURCE_TOPIC_HEADER,
        SOURCE_PARTITION_HEADER,
        SOURCE_OFFSET_HEADER,
        SOURCE_TIMESTAMP_HEADER,
        RULE_HEADER,
        HTTP_STATUS_HEADER,
        RESPONSE_HEADER,
        ATTEMPTS_HEADER,
        EVENT_ID_HEADER,
        VALUE_TRUNCATED_HEADER,
        KEY_TRUNCATED_HEADER,
        HEADERS_DROPPED_HEADER,
    }
)
_MESSAGE_LIMIT: Final = 512
# Longest values of the bridge's own headers, for the start-up check that a cut
# letter always fits (:func:`largest_own_headers`).
_NUMBER_DIGITS: Final = 20
_CODE_LIMIT: Final = 64

# 9999-12-31T23:59:59.999Z: the last millisecond Python's datetime (and ISO 8601's
# four-digit years) can show. Later "times" are corrupt headers, not records.
LATEST_TIME_MS: Final = 253_402_300_799_999
# The widest bound has 19 digits; longer text is out of range before int() reads it
# (int() of thousands of digits is slow, and past 4300 it raises an unrelated error).
_MAX_DIGITS: Final = len(str(MAX_OFFSET))

Headers = list[tuple[str, bytes | None]]


class SourceCoordinates(NamedTuple):
    """Where the failed record is: enough to rebuild it, or to fetch it while retained."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None


class DeadLetter(NamedTuple):
    """One record of the dead-letter topic, and what its headers say, typed.

    ``source`` is None only for ``invalid_callback`` letters: a body Vibes posted,
    never a record of a source topic. ``cut`` names the cut marks of a letter cut
    to fit its topic (its bytes are then not the record's).
    """

    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: DeadLetterReason
    rule: str | None = None
    code: str | None = None
    source: SourceCoordinates | None = None
    cut: tuple[str, ...] = ()
    event_id: str | None = None


class NotADeadLetter(BridgeError):
    """A record on the dead-letter topic that the bridge did not write (or that was altered)."""


def dead_letter(
    record: SourceRecord,
    error: RecordError,
    *,
    rule: str | None = None,
    attempts: int = 0,
    event_id: str | None = None,
) -> DeadLetter:
    """The dead letter for ``record`` failing with ``error`` (in ``rule``, when one was;
    for ``event_id`` when the event was mapped)."""
    # Source headers first; a source header of our own names (a record that was
    # dead-lettered before and replayed) is replaced, not repeated.
    headers: Headers = [
        (name, value) for name, value in record.headers if name not in BRIDGE_HEADERS
    ]
    added: dict[str, str] = {
        REASON_HEADER: str(error.reason),
        MESSAGE_HEADER: one_line(error.message, _MESSAGE_LIMIT),
        CODE_HEADER: str(error.code),
        SOURCE_TOPIC_HEADER: record.topic,
        SOURCE_PARTITION_HEADER: str(record.partition),
        SOURCE_OFFSET_HEADER: str(record.offset),
        ATTEMPTS_HEADER: str(attempts),
    }
    if record.timestamp_ms is not None:
        added[SOURCE_TIMESTAMP_HEADER] = str(record.timestamp_ms)
    if rule is not None:
        added[RULE_HEADER] = rule
    if event_id is not None:
        added[EVENT_ID_HEADER] = event_id
    if isinstance(error, EventRejected):
        added[HTTP_STATUS_HEADER] = str(error.status)
        added[RESPONSE_HEADER] = one_line(error.response, ERROR_RESPONSE_LIMIT)
    headers.extend((name, value.encode("utf-8")) for name, value in added.items())
    source = SourceCoordinates(record.topic, record.partition, record.offset, record.timestamp_ms)
    return DeadLetter(
        record.key, record.value, headers, error.reason, rule, str(error.code), source, (), event_id
    )


def invalid_callback_letter(body: bytes, why: str) -> DeadLetter:
    """The letter for a body the callback receiver could not read as a callback."""
    headers: Headers = [
        (REASON_HEADER, DeadLetterReason.INVALID_CALLBACK.encode()),
        (MESSAGE_HEADER, one_line(why, _MESSAGE_LIMIT).encode("utf-8")),
    ]
    return DeadLetter(None, body, headers, DeadLetterReason.INVALID_CALLBACK)


def read_dead_letter(
    key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes | None]]
) -> DeadLetter:
    """A letter read back from the topic; raises :class:`NotADeadLetter` naming what is wrong.

    The message never holds a header's value: a corrupt header could hold anything.
    """
    headers = list(headers)
    own = _bridge_headers(headers)
    reason = _reason(_required(own, REASON_HEADER))
    cut = tuple(name for name in CUT_MARKS if name in own)
    if reason is DeadLetterReason.INVALID_CALLBACK:
        return DeadLetter(key, value, headers, reason, None, own.get(CODE_HEADER), None, cut)
    timestamp = own.get(SOURCE_TIMESTAMP_HEADER)
    source = SourceCoordinates(
        topic=_topic(_required(own, SOURCE_TOPIC_HEADER)),
        partition=_integer(
            SOURCE_PARTITION_HEADER, _required(own, SOURCE_PARTITION_HEADER), MAX_PARTITION
        ),
        offset=_integer(SOURCE_OFFSET_HEADER, _required(own, SOURCE_OFFSET_HEADER), MAX_OFFSET),
        timestamp_ms=(
            None
            if timestamp is None
            else _integer(SOURCE_TIMESTAMP_HEADER, timestamp, LATEST_TIME_MS)
        ),
    )
    return DeadLetter(
        key,
        value,
        headers,
        reason,
        own.get(RULE_HEADER),
        own.get(CODE_HEADER),
        source,
        cut,
        own.get(EVENT_ID_HEADER),
    )


def source_headers(headers: Iterable[tuple[str, bytes | None]]) -> Headers:
    """The source record's own headers: every header but the bridge's."""
    return [(name, value) for name, value in headers if name not in BRIDGE_HEADERS]


def _bridge_headers(headers: Iterable[tuple[str, bytes | None]]) -> dict[str, str]:
    """The bridge's own headers as text; the last one wins if a name repeats."""
    found: dict[str, str] = {}
    for name, value in headers:
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


def _reason(text: str) -> DeadLetterReason:
    try:
        return DeadLetterReason(text)
    except ValueError:
        raise NotADeadLetter(f"header {REASON_HEADER} is not a reason the bridge writes") from None


def _topic(text: str) -> str:
    if not is_topic_name(text):
        raise NotADeadLetter(f"header {SOURCE_TOPIC_HEADER} is not a Kafka topic name")
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


def fit_letter(letter: DeadLetter, budget: int) -> DeadLetter | None:
    """``letter`` cut to ``budget`` bytes (``bridge.kafka.sizes.record_size``), or None
    when even its own headers do not fit (a configuration problem, checked at start-up).

    A letter that fits is returned as it is. Otherwise the bridge's headers are kept
    whole, and what is left is shared max-min fairly between the key, the source
    headers and the value: a part smaller than its share is kept whole, the larger
    ones get equal shares of the rest. The key and value are cut to their share;
    source headers are kept, in order, each one that still fits, the others dropped
    (a cut header would be a wrong value, a missing one is visible). Each cut part gets
    a header with its original size, so the letter never passes for the record.
    """
    if record_size(letter.key, letter.value, letter.headers) <= budget:
        return letter
    own = [(name, value) for name, value in letter.headers if name in BRIDGE_HEADERS]
    source = [(name, value) for name, value in letter.headers if name not in BRIDGE_HEADERS]
    key, value = letter.key or b"", letter.value or b""
    marks = _marks(len(key), len(value), len(source))
    room = budget - headers_size(own) - headers_size(marks)
    if room < 0:
        return None
    key_share, headers_share, value_share = _shares(
        room, (len(key), headers_size(source), len(value))
    )
    kept = _headers_within(source, headers_share)
    # Reserved above at their largest: the dropped count is at most the source's.
    cut_marks = [
        (name, number)
        for (name, number), cut in zip(
            _marks(len(key), len(value), len(source) - len(kept)),
            (key_share < len(key), len(kept) < len(source), value_share < len(value)),
            strict=True,
        )
        if cut
    ]
    return DeadLetter(
        None if letter.key is None else key[:key_share],
        None if letter.value is None else value[:value_share],
        [*kept, *own, *cut_marks],
        letter.reason,
        letter.rule,
        letter.code,
        letter.source,
        tuple(name for name in CUT_MARKS if any(name == mark for mark, _ in cut_marks)),
        letter.event_id,
    )


def largest_own_headers(topics: Iterable[str], rules: Iterable[str]) -> int:
    """An upper bound of the bytes the bridge's own headers and cut marks take in one
    letter, for the source ``topics`` and rule names ``rules``."""
    number = b"9" * _NUMBER_DIGITS
    code = max((len(code) for code in (*DecodeCode, *MappingCode)), default=0)
    longest: Headers = [
        (REASON_HEADER, b"x" * _CODE_LIMIT),
        (MESSAGE_HEADER, b"x" * _MESSAGE_LIMIT),
        (CODE_HEADER, b"x" * max(code, _CODE_LIMIT)),
        (SOURCE_TOPIC_HEADER, b"x" * max((len(t.encode("utf-8")) for t in topics), default=0)),
        (SOURCE_PARTITION_HEADER, number),
        (SOURCE_OFFSET_HEADER, number),
        (SOURCE_TIMESTAMP_HEADER, number),
        (RULE_HEADER, b"x" * max((len(r.encode("utf-8")) for r in rules), default=0)),
        (HTTP_STATUS_HEADER, number),
        (RESPONSE_HEADER, b"x" * ERROR_RESPONSE_LIMIT),
        (ATTEMPTS_HEADER, number),
        (EVENT_ID_HEADER, b"x" * 4 * MAX_EVENT_ID_LENGTH),  # 40 characters of UTF-8
        *_marks(10**_NUMBER_DIGITS - 1, 10**_NUMBER_DIGITS - 1, 10**_NUMBER_DIGITS - 1),
    ]
    return headers_size(longest)


def _marks(key: int, value: int, headers: int) -> Headers:
    """The cut marks, in the order (key, source headers, value) of :func:`_shares`."""
    return [
        (KEY_TRUNCATED_HEADER, str(key).encode()),
        (HEADERS_DROPPED_HEADER, str(headers).encode()),
        (VALUE_TRUNCATED_HEADER, str(value).encode()),
    ]


def _shares(room: int, needs: tuple[int, int, int]) -> tuple[int, int, int]:
    """Max-min fair shares of ``room`` for ``needs`` (hand-written: three numbers)."""
    shares = [0, 0, 0]
    left = room
    order = sorted(range(len(needs)), key=lambda index: needs[index])
    for position, index in enumerate(order):
        share = min(needs[index], left // (len(needs) - position))
        shares[index] = share
        left -= share
    return shares[0], shares[1], shares[2]


def _headers_within(headers: Headers, budget: int) -> Headers:
    kept: Headers = []
    used = 0
    for header in headers:
        size = headers_size([header])
        if used + size <= budget:
            kept.append(header)
            used += size
    return kept
