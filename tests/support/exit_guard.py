"""A finished test run must also end: threads left behind are named, and a hang fails.

Python joins every non-daemon thread (including idle ``ThreadPoolExecutor``
workers) before the interpreter exits, so one test that leaves a blocked worker
behind keeps pytest alive after its summary until CI's hard limit kills it, with
nothing in the log to say which. This plugin prints the stack of each non-daemon
thread still alive when the session finishes, and arms ``faulthandler`` so that a
process still alive ``EXIT_GRACE_S`` after pytest unconfigures dumps every
thread's stack and exits non-zero instead of hanging.
"""

from __future__ import annotations

import faulthandler
import sys
import threading
import traceback

import pytest

EXIT_GRACE_S = 120.0


def lingering_threads() -> list[threading.Thread]:
    """Non-daemon threads other than the main one: each of them delays interpreter exit."""
    return [
        thread
        for thread in threading.enumerate()
        if thread is not threading.main_thread() and not thread.daemon and thread.is_alive()
    ]


def describe_threads(threads: list[threading.Thread]) -> str:
    """Each thread's name and current stack, for the end of the test log."""
    frames = sys._current_frames()
    parts: list[str] = []
    for thread in threads:
        frame = frames.get(thread.ident or -1)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "  (no frame)\n"
        parts.append(f"--- thread {thread.name!r} (non-daemon) still alive:\n{stack}")
    return "".join(parts)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    threads = lingering_threads()
    if threads:
        sys.stderr.write(
            f"\nexit_guard: {len(threads)} non-daemon thread(s) outlive the session "
            "and delay exit:\n" + describe_threads(threads)
        )
        sys.stderr.flush()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Cancelled by nothing: a healthy run has exited long before the timer fires.
    faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True)
