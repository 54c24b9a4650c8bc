"""The budget topic's entries: round trip, and every malformed entry refused with a reason."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.fleet import MalformedEntry, decode_entry, encode_entry
from bridge.fleet.wire import WireEntry

entries = st.builds(
    WireEntry,
    group=st.text(max_size=20),
    ttl_seconds=st.floats(min_value=0.01, max_value=600),
    wants=st.dictionaries(st.text(max_size=10), st.floats(min_value=0, max_value=1e6)),
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
