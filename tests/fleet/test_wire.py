"""The budget topic's entries: round trip, and every malformed entry refused with a reason."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import MalformedEntry, decode_entry, encode_entry
from bridge.fleet.wire import WireEntry
from tests.fleet.previous_wire import previous_reader

entries = st.builds(
    WireEntry,
    group=st.text(max_size=20),
    ttl_seconds=st.floats(min_value=0.01, max_value=600),
    wants=st.dictionaries(st.text(max_size=10), st.floats(min_value=0, max_value=1e6)),
    lends=st.booleans(),
)


@given(entry=entries)
def test_an_entry_round_trips(entry: WireEntry) -> None:
    assert decode_entry(encode_entry(entry)) == entry


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\x00", "not JSON"),
        (b"[]", "version"),
        (b'{"v": 2, "group": "g", "ttl": 5, "wants": {}}', "version"),
        (b'{"v": 1, "group": 7, "ttl": 5, "wants": {}}', "group"),
        (b'{"v": 1, "group": "g", "ttl": 0, "wants": {}}', "ttl"),
        (b'{"v": 1, "group": "g", "ttl": true, "wants": {}}', "ttl"),
        (b'{"v": 1, "group": "g", "ttl": 5, "wants": []}', "wants"),
        (b'{"v": 1, "group": "g", "ttl": 5, "wants": {"k": -1}}', "want"),
        (b'{"v": 1, "group": "g", "ttl": 5, "wants": {"k": "9"}}', "want"),
        (b'{"v": 1, "group": "g", "ttl": 5, "wants": {"k": false}}', "want"),
    ],
)
def test_malformed_entries_are_refused_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(MalformedEntry, match=reason):
        decode_entry(value)


@given(value=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_reader(value: bytes) -> None:
    with contextlib.suppress(MalformedEntry):
        decode_entry(value)


@given(entry=entries)
def test_the_previous_version_reads_every_entry_this_one_writes(entry: WireEntry) -> None:
    """A rolling update mixes versions in one group: old members must not skip new entries
    (a skipped member would be left out of their split, and they would plan its share too)."""
    lending = WireEntry(entry.group, entry.ttl_seconds, entry.wants, lends=True)
    for written in (entry, lending):
        assert previous_reader(encode_entry(written)) == (
            written.group,
            written.ttl_seconds,
            written.wants,
        )


def test_an_entry_from_before_lending_is_a_member_that_keeps_its_floor() -> None:
    old = b'{"v": 1, "group": "g", "ttl": 5, "wants": {"k": 0}}'
    assert decode_entry(old) == WireEntry("g", 5.0, {"k": 0.0}, lends=False)


@pytest.mark.parametrize("lends", [b"false", b'"yes"', b"1", b"null", b"{}"])
def test_anything_but_true_is_not_lending(lends: bytes) -> None:
    value = b'{"v": 1, "group": "g", "ttl": 5, "wants": {}, "lends": ' + lends + b"}"
    assert decode_entry(value).lends is False


def test_a_lending_entry_says_so() -> None:
    entry = WireEntry("g", 5.0, {"k": 12.5}, lends=True)
    assert orjson.loads(encode_entry(entry))["lends"] is True
    assert decode_entry(encode_entry(entry)) == entry
