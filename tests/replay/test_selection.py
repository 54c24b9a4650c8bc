"""Replay's filters, its progress group per selection, and the --since/--until forms."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.dead_letters import LATEST_TIME_MS
from bridge.errors import DeadLetterReason
from bridge.records import SourceRecord
from bridge.replay import ReplayLetter, Selection, parse_time

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _letter(
    reason: str = "rejected",
    rule: str | None = "r1",
    topic: str = "shop.orders",
    written_ms: int | None = NOW_MS,
) -> ReplayLetter:
    letter = SourceRecord("dlq", 0, 1, b"v", timestamp_ms=written_ms)
    source = SourceRecord(topic, 0, 7, b"v")
    return ReplayLetter(letter, DeadLetterReason(reason), "c", rule, source)


def test_an_empty_selection_takes_everything() -> None:
    assert Selection().matches(_letter(written_ms=None))
    assert Selection().is_everything


@pytest.mark.parametrize(
    ("selection", "taken", "left"),
    [
        (Selection(reasons=frozenset({"rejected"})), _letter(), _letter(reason="decode_error")),
        (
            Selection(reasons=frozenset({"rejected", "expired"})),
            _letter(reason="expired"),
            _letter(reason="mapping_error"),
        ),
        (Selection(rule="r1"), _letter(), _letter(rule=None)),
        (Selection(source_topic="shop.orders"), _letter(), _letter(topic="shop.returns")),
        (Selection(since_ms=NOW_MS), _letter(), _letter(written_ms=NOW_MS - 1)),
        (Selection(until_ms=NOW_MS + 1), _letter(), _letter(written_ms=NOW_MS + 1)),
        (Selection(since_ms=NOW_MS - 5), _letter(), _letter(written_ms=None)),
    ],
)
def test_each_filter_takes_what_it_names_and_leaves_the_rest(
    selection: Selection, taken: ReplayLetter, left: ReplayLetter
) -> None:
    assert selection.matches(taken)
    assert not selection.matches(left)


def test_filters_combine_with_and() -> None:
    selection = Selection(reasons=frozenset({"rejected"}), rule="r2")
    assert not selection.matches(_letter(rule="r1"))
    assert selection.matches(_letter(rule="r2"))


def test_since_must_come_before_until() -> None:
    with pytest.raises(ValueError, match="--since must be earlier"):
        Selection(since_ms=NOW_MS, until_ms=NOW_MS)


def test_the_group_is_the_run_group_dot_replay_and_one_per_selection() -> None:
    assert Selection().group_id("vb") == "vb.replay"
    rejected = Selection(reasons=frozenset({"rejected"})).group_id("vb")
    assert rejected.startswith("vb.replay.")
    assert rejected == Selection(reasons=frozenset({"rejected"})).group_id("vb")
    assert rejected != Selection(reasons=frozenset({"expired"})).group_id("vb")
    assert rejected != Selection(rule="rejected").group_id("vb")  # fields do not run together


def test_describe_names_the_filters() -> None:
    text = Selection(reasons=frozenset({"rejected"}), rule="r1", since_ms=NOW_MS).describe()
    assert text == "reason in rejected; rule r1; since 2026-11-27T12:00:00+00:00"
    assert Selection().describe() == "every dead letter"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW_MS - 2 * 3600 * 1000),
        ("30m", NOW_MS - 30 * 60 * 1000),
        ("2026-11-27T10:00:00Z", NOW_MS - 2 * 3600 * 1000),
        ("2026-11-27T10:00:00", NOW_MS - 2 * 3600 * 1000),
        ("2026-11-27T11:00:00+01:00", NOW_MS - 2 * 3600 * 1000),
        ("2026-11-27", NOW_MS - 12 * 3600 * 1000),
    ],
)
def test_times_are_iso_8601_or_a_duration_ago(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2h ago", "27/11/2026"])
def test_other_times_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time(text, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "99999-01-01",  # past year 9999: not even ISO 8601 to Python
        "10000000000d",  # longer than any timedelta
        "1" * 400 + "d",  # a float of inf seconds
        "nan",
        "nand",
        "inf",
        "-infh",
        "1e3d",
        "-5d",
    ],
)
def test_forms_outside_the_date_range_are_refused_with_the_forms_and_the_range(
    text: str,
) -> None:
    with pytest.raises(ValueError, match=r"ISO 8601.*between 1970-01-01") as refused:
        parse_time(text, NOW)
    assert len(str(refused.value)) < 200  # the text is cut, not echoed whole
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01",  # the epoch-ms is negative
        "1969-12-31T23:59:59.999Z",
        "0001-01-01T00:00:00+01:00",  # year 0 in UTC
        "9999-12-31T23:59:59-01:00",  # year 10000 in UTC
        "800000d",  # before year 1: the subtraction itself overflows
        "999999999d",
        "21000d",  # 2026-11-27 is day 20784: this lands in 1969
    ],
)
def test_times_in_form_but_out_of_range_say_the_range(text: str) -> None:
    with pytest.raises(ValueError, match="out of range: Kafka timestamps run from 1970-01-01"):
        parse_time(text, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("9999-12-31T23:59:59.999Z", LATEST_TIME_MS),
        ("9999-12-31T23:59:59.999999Z", LATEST_TIME_MS),  # microseconds are cut, not rounded
        ("20000d", NOW_MS - 20000 * 86_400_000),
    ],
)
def test_the_edges_of_the_range_are_kept_to_the_millisecond(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("bound", [-1, LATEST_TIME_MS + 1, -(2**63)])
def test_a_selection_refuses_times_outside_the_range(bound: int) -> None:
    for fields in ({"since_ms": bound}, {"until_ms": bound}):
        with pytest.raises(ValueError, match="between 1970-01-01"):
            Selection(**fields)  # type: ignore[arg-type]


def test_an_invalid_callback_has_no_rule_or_source_topic_to_match() -> None:
    written = SourceRecord("dlq", 0, 1, b"{not json", timestamp_ms=NOW_MS)
    callback = ReplayLetter(written, DeadLetterReason.INVALID_CALLBACK, None, None, None)
    assert Selection().matches(callback)
    assert Selection(reasons=frozenset({"invalid_callback"}), since_ms=NOW_MS).matches(callback)
    assert not Selection(reasons=frozenset({"rejected"})).matches(callback)
    assert not Selection(source_topic="shop.orders").matches(callback)
    assert not Selection(rule="r1").matches(callback)
