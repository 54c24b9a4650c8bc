"""Waiting on a condition with a bound: the tests' only way to synchronise (never a fixed sleep).

One rule (poll, give up at the bound), three doors: ``poll_until`` says whether the
condition held in time (for callers that report partial results, such as reading
records), ``wait_until`` fails saying what was awaited, and ``wait_until_async`` is
``wait_until`` for a coroutine that must keep its event loop turning while it waits
(the condition is then usually made true by tasks on that same loop, so a blocking
sleep would wait for ever).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

POLL_INTERVAL_S = 0.02


def poll_until(
    condition: Callable[[], bool], timeout: float, interval: float = POLL_INTERVAL_S
) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds passed (False).

    ``interval=0`` suits a condition that blocks by itself (a Kafka poll).
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def wait_until(
    condition: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "",
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds saying ``what``."""
    if not poll_until(condition, timeout, interval):
        raise _timed_out(timeout, what, condition)


async def wait_until_async(
    condition: Callable[[], bool],
    timeout: float = 10.0,
    what: str = "",
    interval: float = POLL_INTERVAL_S,
) -> None:
    """``wait_until`` inside an event loop: yields to the loop between polls."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise _timed_out(timeout, what, condition)
        await asyncio.sleep(interval)


def _timed_out(timeout: float, what: str, condition: Callable[[], bool]) -> AssertionError:
    return AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
