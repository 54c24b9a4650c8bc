"""Dead letters read back as their source records: the reverse of bridge/dead_letters.py."""

from __future__ import annotations

import dataclasses

import pytest

from bridge.dead_letters import (
    LATEST_TIME_MS,
    VALUE_TRUNCATED_HEADER,
    dead_letter,
    fit_letter,
    invalid_callback_letter,
)
from bridge.errors import (
    DeadLetterReason,
    DecodeCode,
    DecodeError,
    EventRejected,
    MappingCode,
    MappingError,
    RecordError,
)
from bridge.kafka.sizes import record_size
from bridge.records import SourceRecord
from bridge.replay import NotADeadLetter, read_letter

SOURCE = SourceRecord(
    topic="shop.orders",
    partition=2,
    offset=41,
    value=b'{"order_id": "o-1"}',
    key=b"customer-7",
    timestamp_ms=1_700_000_000_000,
    headers=(("traceparent", b"00-abc"), ("empty", None)),
)


def _as_consumed(
    letter_headers: list[tuple[str, bytes | None]], key: bytes | None, value: bytes | None
) -> SourceRecord:
    return SourceRecord(
        topic="bridge.dlq",
        partition=0,
        offset=9,
        value=value,
        key=key,
        timestamp_ms=1_700_000_500_000,
        headers=tuple(letter_headers),
    )


def _round_trip(error: RecordError, rule: str | None = None) -> SourceRecord:
    letter = dead_letter(SOURCE, error, rule=rule)
    return _as_consumed(letter.headers, letter.key, letter.value)


@pytest.mark.parametrize(
    "error",
    [
        DecodeError(DecodeCode.INVALID_JSON, "not JSON"),
        MappingError(MappingCode.NO_RECIPIENT, "no recipient"),
        EventRejected(400, "bad event type"),
    ],
)
def test_the_source_record_is_rebuilt_exactly(error: RecordError) -> None:
    replayed = read_letter(_round_trip(error, rule="order-update"))
    assert replayed.source == SOURCE  # coordinates, key, value, headers and timestamp
    assert replayed.rule == "order-update"
    assert replayed.written_ms == 1_700_000_500_000


def test_reason_code_and_rule_come_from_the_headers() -> None:
    replayed = read_letter(_round_trip(MappingError(MappingCode.NO_RECIPIENT, "none"), rule="r1"))
    assert (replayed.reason, replayed.code, replayed.rule) == (
        "mapping_error",
        "no_recipient",
        "r1",
    )


def test_a_letter_without_timestamp_or_rule_gives_none() -> None:
    source = SourceRecord("t", 0, 5, b"x")
    letter = dead_letter(source, DecodeError(DecodeCode.INVALID_JSON, "x"))
    replayed = read_letter(_as_consumed(letter.headers, None, b"x"))
    assert replayed.source is not None
    assert replayed.source.timestamp_ms is None
    assert replayed.rule is None
    assert replayed.source.key is None


def test_a_replayed_and_dead_lettered_again_record_keeps_one_set_of_bridge_headers() -> None:
    first = read_letter(_round_trip(EventRejected(400, "no")))
    assert first.source is not None
    again = dead_letter(first.source, EventRejected(404, "still no"), rule="r")
    names = [name for name, _value in again.headers]
    assert names.count("bridge.error.reason") == 1
    assert read_letter(_as_consumed(again.headers, again.key, again.value)).source == SOURCE


@pytest.mark.parametrize(
    ("drop", "replace", "problem"),
    [
        ("bridge.error.reason", None, "bridge.error.reason is missing"),
        ("bridge.source.topic", None, "bridge.source.topic is missing"),
        ("bridge.source.offset", None, "bridge.source.offset is missing"),
        (None, ("bridge.source.partition", b"-1"), "not a non-negative integer"),
        (None, ("bridge.source.offset", b"\xff"), "not UTF-8"),
        (None, ("bridge.source.timestamp", b"soon"), "not a non-negative integer"),
        (None, ("bridge.source.offset", "\u0661".encode()), "not a non-negative integer"),
    ],
)
def test_a_record_that_is_not_a_dead_letter_is_refused_by_name(
    drop: str | None, replace: tuple[str, bytes] | None, problem: str
) -> None:
    letter = dead_letter(SOURCE, DecodeError(DecodeCode.INVALID_JSON, "x"))
    headers = [(n, v) for n, v in letter.headers if n != drop]
    if replace is not None:
        headers = [(n, replace[1] if n == replace[0] else v) for n, v in headers]
    with pytest.raises(NotADeadLetter, match=problem):
        read_letter(_as_consumed(headers, letter.key, letter.value))


def test_a_plain_record_is_not_a_dead_letter() -> None:
    with pytest.raises(NotADeadLetter):
        read_letter(_as_consumed([("traceparent", b"x")], b"k", b"v"))


def _with(name: str, value: bytes) -> SourceRecord:
    """SOURCE's dead letter with one bridge header's value replaced."""
    letter = dead_letter(SOURCE, DecodeError(DecodeCode.INVALID_JSON, "x"))
    headers = [(n, value if n == name else v) for n, v in letter.headers]
    return _as_consumed(headers, letter.key, letter.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("bridge.source.partition", b"-1"),
        ("bridge.source.partition", str(2**31).encode()),
        ("bridge.source.partition", str(2**63).encode()),
        ("bridge.source.offset", str(2**63).encode()),
        ("bridge.source.offset", b"9" * 5000),  # past int()'s own digit limit
        ("bridge.source.offset", b"1e3"),
        ("bridge.source.offset", b" 7"),
        ("bridge.source.offset", "\u00b2".encode()),  # a superscript two: isdigit() is True
        ("bridge.source.timestamp", str(LATEST_TIME_MS + 1).encode()),  # year 10000
        ("bridge.source.timestamp", str(2**63 - 1).encode()),
        ("bridge.source.timestamp", b"-1"),
        ("bridge.source.timestamp", b"nan"),
        ("bridge.source.topic", b"shop orders"),
        ("bridge.source.topic", b"t" * 250),
        ("bridge.source.topic", b"orders\n"),
    ],
)
def test_coordinates_kafka_cannot_hold_are_refused_never_rebuilt(name: str, value: bytes) -> None:
    with pytest.raises(NotADeadLetter, match=name.replace(".", r"\.")) as refused:
        read_letter(_with(name, value))
    assert value.decode("utf-8", "replace")[:20] not in str(refused.value)  # names, never echoes


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("bridge.source.partition", str(2**31 - 1).encode(), 2**31 - 1),
        ("bridge.source.partition", b"0", 0),
        ("bridge.source.offset", str(2**63 - 1).encode(), 2**63 - 1),
        ("bridge.source.offset", b"0000041", 41),
        ("bridge.source.timestamp", str(LATEST_TIME_MS).encode(), LATEST_TIME_MS),
        ("bridge.source.timestamp", b"0", 0),
    ],
)
def test_the_edges_of_kafkas_ranges_are_kept(name: str, value: bytes, expected: int) -> None:
    source = read_letter(_with(name, value)).source
    assert source is not None
    attribute = {"partition": "partition", "offset": "offset", "timestamp": "timestamp_ms"}
    assert getattr(source, attribute[name.rsplit(".", 1)[1]]) == expected


def test_the_last_time_is_the_last_millisecond_of_9999() -> None:
    from datetime import UTC, datetime, timedelta

    last = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=LATEST_TIME_MS)
    assert last == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize(
    "why", ["the body is not JSON", "callback_type is not event_processed", ""]
)
def test_the_receivers_invalid_callback_is_read_without_a_source(why: str) -> None:
    """The receiver's letter (its own header function) carries no coordinates: no source."""
    body = b'{"callback_type": "other"}'
    letter = SourceRecord(
        "bridge.dlq",
        0,
        3,
        body,
        timestamp_ms=5,
        headers=tuple(invalid_callback_letter(body, why).headers),
    )
    replayed = read_letter(letter)
    assert replayed.reason == DeadLetterReason.INVALID_CALLBACK
    assert DeadLetterReason.INVALID_CALLBACK.value == "invalid_callback"
    assert replayed.source is None
    assert replayed.source_topic is None
    assert replayed.rule is None
    assert replayed.written_ms == 5


def test_an_invalid_callback_letter_with_stray_coordinates_is_still_not_a_source() -> None:
    letter = dead_letter(SOURCE, DecodeError(DecodeCode.INVALID_JSON, "x"))
    headers = [
        (n, b"invalid_callback" if n == "bridge.error.reason" else v) for n, v in letter.headers
    ]
    assert read_letter(_as_consumed(headers, letter.key, letter.value)).source is None


@pytest.mark.parametrize("budget_over_headers", [0, 10, 500])
def test_a_letter_cut_to_fit_says_so(budget_over_headers: int) -> None:
    big = dataclasses.replace(SOURCE, value=b"v" * 5000, key=b"k" * 3000)
    written = dead_letter(big, EventRejected(404, "no such account"), rule="order-update")
    budget = record_size(None, None, written.headers) + budget_over_headers + 200
    cut = fit_letter(written, budget)
    assert cut is not None
    read = read_letter(_as_consumed(cut.headers, cut.key, cut.value))
    assert VALUE_TRUNCATED_HEADER in read.cut


def test_a_whole_letter_has_no_cut_marks() -> None:
    written = dead_letter(SOURCE, EventRejected(404, "no such account"), rule="order-update")
    assert read_letter(_as_consumed(written.headers, written.key, written.value)).cut == ()
