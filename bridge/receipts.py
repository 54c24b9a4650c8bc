"""The delivery-receipt format (docs/receipts.md): one record per event Vibes accepted.

Pure, and the one place that knows the receipt's shape: :func:`receipt_record`
writes one, :func:`fit_receipt` cuts one to fit its topic, :func:`read_receipt`
reads one back (``vibes-bridge explain``). The record is keyed by the event's
``event_id`` (so every receipt of one event lands on one partition, in order) and
its value is versioned JSON; the ``bridge.receipt.version`` header says which
version without parsing the value.

Every field is bounded by the configuration (rule names, company keys, topic
names, the 40-character ``event_id``) except the event type a template renders
from the record: a receipt that would not fit its topic has its event type cut,
and says so with ``event_type_truncated`` (the original length). The source
record's key is not in a receipt (it may be person data); its coordinates are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import orjson

from bridge.dead_letters import LATEST_TIME_MS, SourceCoordinates
from bridge.errors import BridgeError
from bridge.kafka.sizes import record_size
from bridge.records import MAX_OFFSET, MAX_PARTITION
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH
from bridge.written_records import Document, number_field, read_versioned, text_field

VERSION: Final = 1
VERSION_HEADER: Final = "bridge.receipt.version"
_HEADERS: Final = [(VERSION_HEADER, str(VERSION).encode())]
# Largest event type a receipt read back may hold; anything longer is corrupt.
_READ_LIMIT: Final = 1_000_000

Headers = list[tuple[str, bytes | None]]


class NotAReceipt(BridgeError):
    """A record on the receipts topic that the bridge did not write (or that was altered)."""


class Receipt(NamedTuple):
    """What one receipt says: which event, how Vibes took it, where it came from.

    Times are epoch milliseconds: ``first_attempt_ms`` when the first HTTP attempt
    started, ``accepted_ms`` when Vibes' accepting answer arrived; ``source`` holds
    the source record's coordinates and timestamp. A NamedTuple, as the other
    per-event values: one is built for every accepted event.
    """

    event_id: str
    company_key: str
    event_type: str
    rule: str
    status: int
    attempts: int
    first_attempt_ms: int | None
    accepted_ms: int | None
    source: SourceCoordinates
    event_type_truncated: int | None = None  # the original length, when cut to fit


def receipt_record(receipt: Receipt) -> tuple[bytes, bytes, Headers]:
    """The receipt as a Kafka record: key, value, headers."""
    value: dict[str, Any] = {
        "version": VERSION,
        "event_id": receipt.event_id,
        "company_key": receipt.company_key,
        "event_type": receipt.event_type,
        "rule": receipt.rule,
        "status": receipt.status,
        "attempts": receipt.attempts,
        "first_attempt_ms": receipt.first_attempt_ms,
        "accepted_ms": receipt.accepted_ms,
        "source": {
            "topic": receipt.source.topic,
            "partition": receipt.source.partition,
            "offset": receipt.source.offset,
            "timestamp_ms": receipt.source.timestamp_ms,
        },
    }
    if receipt.event_type_truncated is not None:
        value["event_type_truncated"] = receipt.event_type_truncated
    return receipt.event_id.encode("utf-8"), orjson.dumps(value), list(_HEADERS)


def fitted_record(receipt: Receipt, budget: int) -> tuple[bytes, bytes, Headers] | None:
    """The receipt's record within ``budget`` bytes (``bridge.kafka.sizes.record_size``):
    as it is when it fits, else with its event type cut (:func:`fit_receipt`); None when
    even an empty event type does not fit (a configuration problem, checked at start-up).
    Encodes once when the receipt fits: this runs for every accepted event."""
    record = receipt_record(receipt)
    if record_size(*record) <= budget:
        return record
    fitted = fit_receipt(receipt, budget)
    return None if fitted is None else receipt_record(fitted)


def fit_receipt(receipt: Receipt, budget: int) -> Receipt | None:
    """``receipt`` within ``budget`` bytes (``bridge.kafka.sizes.record_size``): as it is when
    it fits, else with its event type cut; None when even an empty event type does not fit
    (a configuration problem, checked at start-up)."""
    if record_size(*receipt_record(receipt)) <= budget:
        return receipt
    original = len(receipt.event_type)
    marked = receipt._replace(event_type="", event_type_truncated=original)
    room = budget - record_size(*receipt_record(marked))
    if room < 0:
        return None
    # A valid event type is ASCII letters, digits, "-" and "_": one byte a character.
    return marked._replace(event_type=receipt.event_type[:room])


def largest_fixed_receipt(topics: Iterable[str], rules: Iterable[str], keys: Iterable[str]) -> int:
    """An upper bound of a receipt's bytes with an empty event type, for the source
    ``topics``, rule names ``rules`` and company ``keys`` (the start-up check)."""
    big = MAX_OFFSET  # the widest number Kafka (and the JSON encoder) holds

    def longest(names: Iterable[str]) -> str:
        # JSON escapes a control character as 6 bytes; names are checked text, but be safe.
        return "x" * (6 * max((len(name) for name in names), default=0))

    widest = Receipt(
        event_id="x" * (6 * MAX_EVENT_ID_LENGTH),
        company_key=longest(keys),
        event_type="",
        rule=longest(rules),
        status=999,
        attempts=big,
        first_attempt_ms=big,
        accepted_ms=big,
        source=SourceCoordinates(longest(topics), big, big, big),
        event_type_truncated=big,
    )
    return record_size(*receipt_record(widest))


def read_receipt(value: bytes | None) -> Receipt:
    """A receipt read back from its value; raises :class:`NotAReceipt` naming what is wrong
    (never quoting a value: a corrupt record could hold anything)."""
    document, source, topic = read_versioned(
        value, version=VERSION, what="receipt", error=NotAReceipt
    )
    truncated = document.get("event_type_truncated")
    return Receipt(
        event_id=_text(document, "event_id", MAX_EVENT_ID_LENGTH),
        company_key=_text(document, "company_key", _READ_LIMIT),
        event_type=_text(document, "event_type", _READ_LIMIT),
        rule=_text(document, "rule", _READ_LIMIT),
        status=_number(document, "status", 999),
        attempts=_number(document, "attempts", MAX_OFFSET),
        first_attempt_ms=_optional_number(document, "first_attempt_ms", LATEST_TIME_MS),
        accepted_ms=_optional_number(document, "accepted_ms", LATEST_TIME_MS),
        source=SourceCoordinates(
            topic,
            _number(source, "partition", MAX_PARTITION),
            _number(source, "offset", MAX_OFFSET),
            _optional_number(source, "timestamp_ms", LATEST_TIME_MS),
        ),
        event_type_truncated=(
            None
            if truncated is None
            else _number(document, "event_type_truncated", _READ_LIMIT * 16)
        ),
    )


def _text(document: Document, name: str, limit: int) -> str:
    return text_field(document, name, limit, NotAReceipt)


def _number(document: Document, name: str, largest: int) -> int:
    return number_field(document, name, largest, NotAReceipt)


def _optional_number(document: Document, name: str, largest: int) -> int | None:
    return None if document.get(name) is None else _number(document, name, largest)
