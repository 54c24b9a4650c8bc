"""The commit metadata: which offsets beyond the committed position are finished already.

The committed position cannot pass a record that is not finished (a key stuck in
retries), so without more a restart redoes every record after it, finished or
not. With each commit the bridge also stores, in the commit's metadata text,
the offsets beyond the position that are finished; the next owner of the
partition skips those and redoes only the rest.

The text (``vb1``, version 1)::

    vb1:<base>:<gap>+<count>[,<gap>+<count>]...

``base`` is the committed offset the text belongs to. Each item is one run of
finished offsets: ``gap`` offsets after the end of the previous run (after
``base`` for the first one, where 0 is allowed) are not listed, then ``count``
(at least 1) consecutive offsets are finished. All numbers are decimal, without
sign. Example: committed 120 with ``vb1:120:1+7,2+40`` means 121 to 127 and
130 to 169 are finished; 120, 128 and 129 are not (or not known to be).

Safety rests on two rules. Listing fewer offsets than are finished is always
safe (they are redone, and their event ids make that harmless), so a text that
would exceed :data:`MAX_METADATA_BYTES` lists a prefix of the runs, never a run
that was not finished. Reading is defensive: a text that is empty, has another
prefix or version, a ``base`` other than the committed offset, or anything
malformed gives *no* finished offsets, and the partition is redone from the
committed position, which is what a plain consumer (that ignores metadata) does.

Pure: strings and integers in, strings and ranges out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from bridge.records import MAX_OFFSET

PREFIX: Final = "vb1:"
MAX_METADATA_BYTES: Final = 4096
"""Kafka's default ``offset.metadata.max.bytes``: the broker refuses a longer text."""
_MAX_READ_BYTES: Final = 1 << 20  # a text longer than this is not ours: ignored unparsed
_MAX_DIGITS: Final = 19  # 2**63 - 1 has 19 digits

Range = tuple[int, int]
"""Finished offsets ``[start, end)``."""


def encode(base: int, finished: Iterable[Range], limit: int = MAX_METADATA_BYTES) -> str:
    """The text for committed ``base`` and ``finished`` ranges (ascending, at or past it).

    Adjacent or overlapping ranges are joined; empty ones and parts below
    ``base`` are left out. Runs that would take the text past ``limit``
    characters are left out, from the first that does not fit on: a prefix of
    the runs, so never an offset that is not finished. No runs: the empty text.
    """
    head = f"{PREFIX}{base}:"
    length = len(head)
    items: list[str] = []
    previous_end = base
    for start, end in _runs(base, finished):
        item = f"{start - previous_end}+{end - start}"
        cost = len(item) + (1 if items else 0)
        if length + cost > limit:
            break
        items.append(item)
        length += cost
        previous_end = end
    return head + ",".join(items) if items else ""


def _runs(base: int, ranges: Iterable[Range]) -> Iterable[Range]:
    """``ranges`` as maximal runs at or past ``base``; lazy, so a cut text computes no more."""
    run: Range | None = None
    floor = base
    for low, end in ranges:
        start = max(low, floor)
        if end <= start:
            continue
        if run is not None and start <= run[1]:
            run = (run[0], max(run[1], end))
        else:
            if run is not None:
                yield run
            run = (start, end)
        floor = run[1]
    if run is not None:
        yield run


def decode(text: str, base: int) -> list[Range]:
    """The finished ranges a text lists for committed ``base``; empty unless it is all valid."""
    if not text.startswith(PREFIX) or len(text) > _MAX_READ_BYTES:
        return []
    stated, separator, body = text[len(PREFIX) :].partition(":")
    if not separator or _number(stated) != base or not body:
        return []
    ranges: list[Range] = []
    position = base
    for index, item in enumerate(body.split(",")):
        gap_text, plus, count_text = item.partition("+")
        gap, count = _number(gap_text), _number(count_text)
        if not plus or gap is None or count is None or count < 1 or (index and gap < 1):
            return []
        start = position + gap
        position = start + count
        if position > MAX_OFFSET:
            return []
        ranges.append((start, position))
    return ranges


def _number(text: str) -> int | None:
    """A decimal of ASCII digits only (``int`` alone would take signs, spaces and ``_``)."""
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
