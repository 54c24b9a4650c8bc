"""The budget topic's entries: one JSON object per member, keyed by the member's id.

``{"v": 1, "group": ..., "ttl": seconds, "wants": {company_key: requests/s},
"lends": true}``. A tombstone (no value) says the member left. Anything else
(another version, a wrong type, a negative want) is :class:`MalformedEntry`:
the reader skips it and counts it, since one bad writer must not stop the
fleet from planning. Company keys are account identifiers, never person data.

Compatibility during a rolling update: readers ignore fields they do not know,
so a field whose absence keeps the old meaning is added without a new version.
``lends`` (issue 17) is one: a version 1 reader from before it ignores it and
plans the member with its floor, as it always did; a reader from after it
takes an entry without it (or with anything but ``true``) as a member that
keeps its floor. A change that an older reader would misread must raise
``v``: an older reader then skips those entries, as it skips malformed ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

import orjson

from bridge.errors import BridgeError

VERSION: Final = 1
_MAX_KEYS: Final = 10_000


class MalformedEntry(BridgeError):
    """An entry this version cannot read; the message names the problem, not the payload."""


@dataclass(frozen=True, slots=True)
class WireEntry:
    """A member's published wants, as read from the topic."""

    group: str
    ttl_seconds: float
    wants: dict[str, float]
    # The member gives up its floor of a key it wants nothing of (bridge.fleet.shares).
    lends: bool = False


def encode_entry(entry: WireEntry) -> bytes:
    """The entry's value bytes."""
    document: dict[str, Any] = {
        "v": VERSION,
        "group": entry.group,
        "ttl": entry.ttl_seconds,
        "wants": entry.wants,
    }
    if entry.lends:
        document["lends"] = True
    return orjson.dumps(document)


def decode_entry(value: bytes) -> WireEntry:
    """Parse and check one entry; :class:`MalformedEntry` when it is not one this version reads."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise MalformedEntry("not JSON") from None
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise MalformedEntry(f"not a version {VERSION} entry")
    group, ttl, wants = document.get("group"), document.get("ttl"), document.get("wants")
    if not isinstance(group, str):
        raise MalformedEntry("group is not text")
    if not _positive_number(ttl):
        raise MalformedEntry("ttl is not a positive number")
    # Not lending is the safe reading of anything unexpected: the member keeps its floor.
    return WireEntry(group, float(ttl), _wants(wants), lends=document.get("lends") is True)


def _wants(wants: Any) -> dict[str, float]:
    if not isinstance(wants, dict) or len(wants) > _MAX_KEYS:
        raise MalformedEntry("wants is not a map of company keys to rates")
    checked: dict[str, float] = {}
    for key, rate in wants.items():
        if not (_positive_number(rate) or rate == 0) or isinstance(rate, bool):
            raise MalformedEntry("a want is not a number >= 0")
        checked[key] = float(rate)
    return checked


def _positive_number(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
