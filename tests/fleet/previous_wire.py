"""The budget entry reader as released before lending (0695453), kept to test rolling updates.

A member of that version reads entries this way: version 1, a text group, a positive ttl, a
map of non-negative numbers; anything else it skips. Frozen on purpose: the test that new
entries stay readable by it must not follow changes to ``bridge.fleet.wire``.
"""

from __future__ import annotations

import math
from typing import Any

import orjson


def previous_reader(value: bytes) -> tuple[str, float, dict[str, float]] | None:
    """(group, ttl, wants) as the previous version reads them; None where it skips the entry."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(document, dict) or document.get("v") != 1:
        return None
    group, ttl, wants = document.get("group"), document.get("ttl"), document.get("wants")
    if not isinstance(group, str) or not _positive(ttl) or not isinstance(wants, dict):
        return None
    assert isinstance(ttl, int | float)
    if len(wants) > 10_000:
        return None
    for rate in wants.values():
        if isinstance(rate, bool) or not (_positive(rate) or rate == 0):
            return None
    return group, float(ttl), {key: float(rate) for key, rate in wants.items()}


def _positive(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
