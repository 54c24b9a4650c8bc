"""What a dead letter carries (spec section 3): the source record unchanged, plus why.

Pure: the pipeline hands the result to the dead-letter producer. The value and
key are the source record's bytes, its headers are kept, and the ``bridge.*``
headers say what went wrong and where the record came from, so that an
operator (and ``vibes-bridge replay``) can act on it without the original topic.
Messages come from the error tree, whose messages never hold person data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from bridge.errors import DecodeCode, EventRejected, MappingCode, RecordError
from bridge.kafka.sizes import headers_size, record_size
from bridge.records import SourceRecord
from bridge.vibes.api import ERROR_RESPONSE_LIMIT, one_line

REASON: Final = "bridge.error.reason"
MESSAGE: Final = "bridge.error.message"
CODE: Final = "bridge.error.code"
SOURCE_TOPIC: Final = "bridge.source.topic"
SOURCE_PARTITION: Final = "bridge.source.partition"
SOURCE_OFFSET: Final = "bridge.source.offset"
SOURCE_TIMESTAMP: Final = "bridge.source.timestamp"
RULE: Final = "bridge.rule"
HTTP_STATUS: Final = "bridge.http.status"
RESPONSE: Final = "bridge.error.response"
ATTEMPTS: Final = "bridge.attempts"
# Set only on a letter cut to fit the dead-letter topic (docs/running.md, "Size bounds"):
# the original value or key size in bytes, the number of source headers dropped. The
# coordinates say where the full record is while the source topic retains it.
VALUE_TRUNCATED: Final = "bridge.error.value_truncated"
KEY_TRUNCATED: Final = "bridge.error.key_truncated"
HEADERS_DROPPED: Final = "bridge.error.headers_dropped"
# A letter with any of these is not the whole record: replay refuses to send it.
CUT_MARKS: Final = (VALUE_TRUNCATED, KEY_TRUNCATED, HEADERS_DROPPED)

BRIDGE_HEADERS: Final = frozenset(
    {
        REASON,
        MESSAGE,
        CODE,
        SOURCE_TOPIC,
        SOURCE_PARTITION,
        SOURCE_OFFSET,
        SOURCE_TIMESTAMP,
        RULE,
        HTTP_STATUS,
        RESPONSE,
        ATTEMPTS,
        VALUE_TRUNCATED,
        KEY_TRUNCATED,
        HEADERS_DROPPED,
    }
)
_MESSAGE_LIMIT: Final = 512
# Longest values of the bridge's own headers, for the start-up check that a cut
# letter always fits (:func:`largest_own_headers`).
_NUMBER_DIGITS: Final = 20
_CODE_LIMIT: Final = 64

Headers = list[tuple[str, bytes | None]]


class DeadLetter(NamedTuple):
    """One record for the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str
    rule: str | None = None


def dead_letter(
    record: SourceRecord, error: RecordError, *, rule: str | None = None, attempts: int = 0
) -> DeadLetter:
    """The dead letter for ``record`` failing with ``error`` (in ``rule``, when one was)."""
    # Source headers first; a source header of our own names (a record that was
    # dead-lettered before and replayed) is replaced, not repeated.
    headers: Headers = [
        (name, value) for name, value in record.headers if name not in BRIDGE_HEADERS
    ]
    added: dict[str, str] = {
        REASON: str(error.reason),
        MESSAGE: one_line(error.message, _MESSAGE_LIMIT),
        CODE: str(error.code),
        SOURCE_TOPIC: record.topic,
        SOURCE_PARTITION: str(record.partition),
        SOURCE_OFFSET: str(record.offset),
        ATTEMPTS: str(attempts),
    }
    if record.timestamp_ms is not None:
        added[SOURCE_TIMESTAMP] = str(record.timestamp_ms)
    if rule is not None:
        added[RULE] = rule
    if isinstance(error, EventRejected):
        added[HTTP_STATUS] = str(error.status)
        added[RESPONSE] = one_line(error.response, ERROR_RESPONSE_LIMIT)
    headers.extend((name, value.encode("utf-8")) for name, value in added.items())
    return DeadLetter(record.key, record.value, headers, str(error.reason), rule)


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
    )


def largest_own_headers(topics: Iterable[str], rules: Iterable[str]) -> int:
    """An upper bound of the bytes the bridge's own headers and cut marks take in one
    letter, for the source ``topics`` and rule names ``rules``."""
    number = b"9" * _NUMBER_DIGITS
    code = max((len(code) for code in (*DecodeCode, *MappingCode)), default=0)
    longest: Headers = [
        (REASON, b"x" * _CODE_LIMIT),
        (MESSAGE, b"x" * _MESSAGE_LIMIT),
        (CODE, b"x" * max(code, _CODE_LIMIT)),
        (SOURCE_TOPIC, b"x" * max((len(t.encode("utf-8")) for t in topics), default=0)),
        (SOURCE_PARTITION, number),
        (SOURCE_OFFSET, number),
        (SOURCE_TIMESTAMP, number),
        (RULE, b"x" * max((len(r.encode("utf-8")) for r in rules), default=0)),
        (HTTP_STATUS, number),
        (RESPONSE, b"x" * ERROR_RESPONSE_LIMIT),
        (ATTEMPTS, number),
        *_marks(10**_NUMBER_DIGITS - 1, 10**_NUMBER_DIGITS - 1, 10**_NUMBER_DIGITS - 1),
    ]
    return headers_size(longest)


def _marks(key: int, value: int, headers: int) -> Headers:
    """The cut marks, in the order (key, source headers, value) of :func:`_shares`."""
    return [
        (KEY_TRUNCATED, str(key).encode()),
        (HEADERS_DROPPED, str(headers).encode()),
        (VALUE_TRUNCATED, str(value).encode()),
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
