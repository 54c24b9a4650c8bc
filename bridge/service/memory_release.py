"""Give the memory that C code freed back to the system, once a minute.

librdkafka's threads buffer fetched batches and the bodies of requests in
flight; after a burst (the backlog that builds while a broker restarts, a
rebalance that re-fetches) that memory is freed, but glibc keeps the free pages
inside its per-thread arenas, so resident memory climbs a step with each burst
and never comes down although the memory in use does. Measured in the soak
(docs/performance.md, "Long run"): in use fell from 26 to 20 MB while free-but-
kept rose from 15 to 41 MB and RSS from 100 to 120 MB. glibc's
``malloc_trim(0)`` walks every arena and returns whole free pages to the kernel.

Hand-written with ctypes: the standard library has no binding for it and no
maintained package offers one. Where the C library is not glibc (musl, macOS)
there is nothing to call and releasing is a no-op.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Final

log = logging.getLogger(__name__)

RELEASE_INTERVAL_SECONDS: Final = 60.0

Release = Callable[[], bool]


def glibc_malloc_trim() -> Release | None:
    """``malloc_trim(0)`` of this process's C library, or None where there is none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> bool:
        """True when some memory was given back (glibc's return value)."""
        return bool(trim(0))

    return release


async def release_freed_memory(
    release: Release | None, interval: float = RELEASE_INTERVAL_SECONDS
) -> None:
    """Every ``interval`` seconds, hand free C-heap pages back; runs until cancelled.

    ``release`` is :func:`glibc_malloc_trim`'s answer (None: nothing to call, and
    the task ends at once). The walk takes a few milliseconds under each arena's
    lock, so it runs on a worker thread rather than stalling the event loop.
    """
    if release is None:
        log.debug("no malloc_trim in this C library; freed memory stays with the allocator")
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(release)
