"""Durations written as ``500ms``, ``30s``, ``10m``, ``1h`` or ``2d``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_LONGEST = f"the longest is {timedelta.max.days}d; leave the setting out for no limit"


def parse_duration(text: str) -> timedelta:
    """Parse one duration; raise ValueError with the accepted forms otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: write e.g. 500ms, 30s, 10m, 1h or 2d")
    amount, unit = match.groups()
    try:
        return timedelta(seconds=float(amount) * _UNIT_SECONDS[unit])
    except OverflowError:  # past timedelta.max, or float("1" * 400) == inf
        raise ValueError(f"the duration is too large: {_LONGEST}") from None


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool):
        raise ValueError("a duration must be written like 30s, 10m or 1h")
    if isinstance(value, int | float):
        raise ValueError(f"a duration needs a unit: write {value}s, for example")
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_timedelta)]
