"""Cutting a dead letter to fit its topic (pure): what is kept, what is cut, what says so."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.dead_letters import (
    BRIDGE_HEADERS,
    CUT_MARKS,
    HEADERS_DROPPED_HEADER,
    KEY_TRUNCATED_HEADER,
    VALUE_TRUNCATED_HEADER,
    DeadLetter,
    dead_letter,
    fit_letter,
    largest_own_headers,
)
from bridge.errors import DecodeCode, DecodeError, EventRejected
from bridge.kafka.sizes import record_size
from bridge.records import SourceRecord

TOPIC = "shop.orders"


def letter(
    value: bytes | None,
    key: bytes | None = b"customer-1",
    headers: Sequence[tuple[str, bytes | None]] = (),
) -> DeadLetter:
    record = SourceRecord(
        topic=TOPIC,
        partition=3,
        offset=12345,
        key=key,
        value=value,
        headers=tuple(headers),
        timestamp_ms=1_700_000_000_000,
    )
    return dead_letter(record, DecodeError(DecodeCode.INVALID_JSON, "not JSON at byte 0"))


def header(fitted: DeadLetter, name: str) -> bytes | None:
    found = [value for found, value in fitted.headers if found == name]
    return found[0] if found else None


def own(letter_: DeadLetter) -> list[tuple[str, bytes | None]]:
    return [(name, value) for name, value in letter_.headers if name in BRIDGE_HEADERS]


def test_a_letter_that_fits_is_returned_unchanged() -> None:
    original = letter(b"x" * 100, headers=[("trace", b"abc")])
    assert fit_letter(original, 10_000) is original


@pytest.mark.parametrize("size", [9_000, 10_000, 100_000, 1_500_000, 5_000_000])
def test_a_large_value_is_cut_to_what_fits_and_says_its_size(size: int) -> None:
    budget = 8_000
    original = letter(bytes(range(256)) * (size // 256), headers=[("trace", b"abc")])
    fitted = fit_letter(original, budget)
    assert fitted is not None
    assert record_size(fitted.key, fitted.value, fitted.headers) <= budget
    assert fitted.value is not None
    assert original.value is not None
    assert original.value.startswith(fitted.value)
    assert len(fitted.value) > budget // 2  # the value gets what the small parts leave
    assert header(fitted, VALUE_TRUNCATED_HEADER) == str(len(original.value)).encode()
    assert fitted.key == original.key  # small parts are kept whole
    assert ("trace", b"abc") in fitted.headers
    assert header(fitted, KEY_TRUNCATED_HEADER) is None
    assert header(fitted, HEADERS_DROPPED_HEADER) is None
    assert own(original) == [h for h in own(fitted) if h[0] != VALUE_TRUNCATED_HEADER]
    assert fitted.reason == original.reason


def test_a_huge_key_is_cut_and_large_source_headers_dropped_not_cut() -> None:
    headers = [("small", b"s"), ("big", b"b" * 50_000), ("after", b"a")]
    original = letter(b"v" * 100, key=b"k" * 50_000, headers=headers)
    fitted = fit_letter(original, 6_000)
    assert fitted is not None
    assert record_size(fitted.key, fitted.value, fitted.headers) <= 6_000
    assert fitted.value == b"v" * 100  # the small value is whole
    assert fitted.key is not None
    assert 0 < len(fitted.key) < 50_000
    assert header(fitted, KEY_TRUNCATED_HEADER) == b"50000"
    assert header(fitted, HEADERS_DROPPED_HEADER) == b"1"
    assert ("small", b"s") in fitted.headers
    assert ("after", b"a") in fitted.headers
    assert all(name != "big" for name, _ in fitted.headers)
    assert header(fitted, VALUE_TRUNCATED_HEADER) is None


def test_a_null_value_and_key_stay_null() -> None:
    original = letter(None, key=None, headers=[("big", b"b" * 20_000)])
    fitted = fit_letter(original, 5_000)
    assert fitted is not None
    assert fitted.key is None
    assert fitted.value is None
    assert header(fitted, HEADERS_DROPPED_HEADER) == b"1"


@pytest.mark.parametrize("budget", [0, 50, 200])
def test_nothing_fits_when_the_own_headers_do_not(budget: int) -> None:
    assert fit_letter(letter(b"x" * 1_000), budget) is None


def test_the_start_up_bound_covers_the_largest_real_letter() -> None:
    rejected = EventRejected(422, "r" * 5_000)
    record = SourceRecord(
        topic="t" * 249,
        partition=2**31 - 1,
        offset=2**63 - 1,
        key=None,
        value=b"x" * 100_000,
        headers=(),
        timestamp_ms=2**63 - 1,
    )
    rule = "rule-" + "n" * 200
    original = dead_letter(record, rejected, rule=rule, attempts=10**9)
    bound = largest_own_headers(["t" * 249], [rule])
    fitted = fit_letter(original, bound)
    assert fitted is not None  # the bound is enough for the worst letter the bridge writes
    assert fitted.value is not None
    assert len(fitted.value) < 100_000
    assert header(fitted, VALUE_TRUNCATED_HEADER) == b"100000"
    assert header(fitted, "bridge.error.response") is not None


@given(
    key=st.none() | st.binary(max_size=3_000),
    value=st.none() | st.binary(max_size=20_000),
    headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=2_000)), max_size=6),
    budget=st.integers(min_value=0, max_value=25_000),
)
def test_a_fitted_letter_always_fits_and_keeps_prefixes(
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes | None]],
    budget: int,
) -> None:
    original = letter(value, key=key, headers=headers)
    fitted = fit_letter(original, budget)
    if fitted is None:
        # The three cut marks: a name, at most 20 digits and 10 bytes of framing each.
        marks_bound = sum(len(name) + 20 + 10 for name in CUT_MARKS)
        assert record_size(None, None, own(original)) > budget - marks_bound
        return
    assert record_size(fitted.key, fitted.value, fitted.headers) <= budget
    assert (fitted.key is None) == (key is None)
    assert (fitted.value is None) == (value is None)
    assert (key or b"").startswith(fitted.key or b"")
    assert (value or b"").startswith(fitted.value or b"")
    cut = header(fitted, VALUE_TRUNCATED_HEADER)
    assert (cut is not None) == (len(fitted.value or b"") < len(value or b""))
    for name, _ in own(original):
        assert header(fitted, name) == header(original, name)
