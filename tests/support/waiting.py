"""Waiting on a condition with a bound: the tests' only way to synchronise (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_INTERVAL_S = 0.02


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds saying ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(POLL_INTERVAL_S)
