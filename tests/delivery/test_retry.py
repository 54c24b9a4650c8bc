"""Retry-After parsing and backoff with full jitter (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.delivery.retry import MAX_RETRY_AFTER_SECONDS, Backoff, parse_retry_after

NOW = 1_800_000_000.0


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("100000", MAX_RETRY_AFTER_SECONDS),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.2.3", None),
        ("Wed, 99 Foo 2020 99:99:99 GMT", None),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    assert parse_retry_after(http_date(NOW + 42), NOW) == pytest.approx(42.0)


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after(http_date(NOW - 600), NOW) == 0.0


def test_retry_after_far_in_the_future_is_capped() -> None:
    assert parse_retry_after(http_date(NOW + 86_400), NOW) == MAX_RETRY_AFTER_SECONDS


def test_a_date_without_a_zone_is_not_guessed() -> None:
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", NOW) is None


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=30.0)
    assert [backoff.ceiling(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30.0


@given(attempt=st.integers(min_value=1, max_value=500), seed=st.integers())
def test_backoff_delay_is_a_full_jitter_draw_under_the_ceiling(attempt: int, seed: int) -> None:
    backoff = Backoff(initial=0.5, cap=30.0, rng=random.Random(seed))
    assert 0.0 <= backoff.delay(attempt) <= backoff.ceiling(attempt)


def test_backoff_jitter_spreads_over_the_whole_window() -> None:
    backoff = Backoff(initial=1.0, cap=8.0, rng=random.Random(1))
    draws = [backoff.delay(4) for _ in range(2000)]
    assert min(draws) < 0.5
    assert max(draws) > 7.5


@pytest.mark.parametrize(("initial", "cap"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_backoff_refuses_nonsense(initial: float, cap: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(initial=initial, cap=cap)
