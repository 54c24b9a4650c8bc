"""The event_id rules: deterministic, at most 40 characters, stable across redeliveries."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from bridge.mapping.event_id import coordinates_event_id, given_event_id

NAMES = st.text(min_size=1, max_size=30)


@given(rule=NAMES, topic=NAMES, partition=st.integers(0, 10_000), offset=st.integers(0, 2**62))
def test_the_default_is_the_sha1_of_the_coordinates(
    rule: str, topic: str, partition: int, offset: int
) -> None:
    event_id = coordinates_event_id(rule, topic, partition, offset)
    expected = hashlib.sha1(f"{rule}|{topic}|{partition}|{offset}".encode()).hexdigest()
    assert event_id == expected
    assert len(event_id) == 40
    assert event_id == coordinates_event_id(rule, topic, partition, offset)


@given(st.text(min_size=1, max_size=40))
def test_a_short_given_id_is_kept(text: str) -> None:
    assert given_event_id(text) == text


@given(st.text(min_size=41, max_size=200))
def test_a_long_given_id_is_replaced_by_its_sha1(text: str) -> None:
    event_id = given_event_id(text)
    assert event_id == hashlib.sha1(text.encode()).hexdigest()
    assert event_id is not None
    assert len(event_id) == 40


@given(st.integers())
def test_a_number_is_written_as_text(number: int) -> None:
    event_id = given_event_id(number)
    assert event_id is not None
    assert event_id == (
        str(number) if len(str(number)) <= 40 else hashlib.sha1(str(number).encode()).hexdigest()
    )


def test_null_or_empty_means_not_given() -> None:
    assert given_event_id(None) is None
    assert given_event_id("") is None
