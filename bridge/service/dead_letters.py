"""What a dead letter carries (spec section 3): the source record unchanged, plus why.

Pure: the pipeline hands the result to the dead-letter producer. The value and
key are the source record's bytes, its headers are kept, and the ``bridge.*``
headers say what went wrong and where the record came from, so that an
operator (and ``vibes-bridge replay``) can act on it without the original topic.
Messages come from the error tree, whose messages never hold person data.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from bridge.errors import EventRejected, RecordError
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
    }
)
_MESSAGE_LIMIT: Final = 512

Headers = list[tuple[str, bytes | None]]


class DeadLetter(NamedTuple):
    """One record for the dead-letter topic."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    reason: str


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
    return DeadLetter(record.key, record.value, headers, str(error.reason))
