"""The commit metadata: what it lists is finished, a cut text is a prefix, garbage is nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.records import MAX_OFFSET
from bridge.service.commit_metadata import MAX_METADATA_BYTES, decode, encode


def _offsets(ranges: list[tuple[int, int]]) -> set[int]:
    return {offset for start, end in ranges for offset in range(start, end)}


@st.composite
def finished_sets(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    """A committed base and ascending finished ranges past it (possibly touching)."""
    base = draw(st.integers(min_value=0, max_value=2**40))
    ranges = []
    position = base
    for gap, count in draw(
        st.lists(st.tuples(st.integers(0, 50), st.integers(1, 50)), max_size=40)
    ):
        start = position + gap
        ranges.append((start, start + count))
        position = start + count
    return base, ranges


@given(finished_sets(), st.integers(min_value=0, max_value=MAX_METADATA_BYTES))
def test_decoding_gives_back_a_prefix_of_what_was_finished(
    case: tuple[int, list[tuple[int, int]]], limit: int
) -> None:
    """decode(encode(x)) is a subset of x: never an unfinished offset, cut only at the end."""
    base, ranges = case
    text = encode(base, ranges, limit)
    assert len(text) <= limit
    listed = _offsets(decode(text, base))
    finished = _offsets(ranges)
    assert listed <= finished
    below = {offset for offset in finished if offset < max(listed, default=base)}
    assert below <= listed  # a prefix: nothing finished before the last listed offset is missing
    if limit == MAX_METADATA_BYTES and len(ranges) <= 40:
        assert listed == finished  # 40 small runs always fit the real limit


@given(finished_sets())
def test_a_text_is_only_good_for_its_own_base(case: tuple[int, list[tuple[int, int]]]) -> None:
    base, ranges = case
    text = encode(base, ranges)
    assert decode(text, base + 1) == []


@given(st.text(max_size=200), st.integers(min_value=0, max_value=MAX_OFFSET))
def test_any_text_decodes_to_ranges_past_the_base_or_nothing(text: str, base: int) -> None:
    for start, end in decode(text, base):
        assert base <= start < end <= MAX_OFFSET


@pytest.mark.parametrize(
    "text",
    [
        "",
        "vb1",
        "vb1:",
        "vb1:10",
        "vb1:10:",
        "vb2:10:1+2",
        "VB1:10:1+2",
        "vb1:10:1+0",  # an empty run
        "vb1:10:1+2,0+3",  # a second run with no gap: not what encode writes
        "vb1:10:1+2,",
        "vb1:10:-1+2",
        "vb1:10:+1+2",
        "vb1:10:1+2 ",
        "vb1:10:1_0+2",
        "vb1:10:\u0661+2",  # a digit, but not an ASCII one
        "vb1:10:1+2;3+4",
        f"vb1:10:1+{MAX_OFFSET}",  # past the largest offset
        "vb1:10:" + "9" * 20 + "+1",
        "consumer-tool-note",
    ],
)
def test_garbage_lists_nothing(text: str) -> None:
    assert decode(text, 10) == []


def test_the_format_as_documented() -> None:
    text = encode(120, [(121, 128), (130, 150), (150, 170)])
    assert text == "vb1:120:1+7,2+40"
    assert decode(text, 120) == [(121, 128), (130, 170)]
    assert encode(120, []) == ""
    assert encode(120, [(100, 122)]) == "vb1:120:0+2"  # parts below the base are left out
    assert decode("vb1:5:0+3", 5) == [(5, 8)]
