"""glibc's malloc, tuned for a process that lives for weeks beside librdkafka.

librdkafka's threads buffer fetched batches (about a megabyte each) and the
bodies of requests in flight; after a burst (the backlog that builds while a
broker restarts, a rebalance that re-fetches) that memory is freed, but glibc
keeps it: in the arena of the thread that freed it (up to eight per core), and,
once a large block has been freed, its dynamic mmap threshold rises so the next
large buffers come from those arenas too. Resident memory then climbs a step
with each burst and never comes down although the memory in use does (measured
in the soak, docs/performance.md "Long run": in use 20 to 26 MB throughout, RSS
from 100 to 120 MB in steps with the broker restarts).

Two measures, both glibc's own:

- at start, :func:`tune_allocator`: at most two arenas, and a fixed mmap
  threshold, so a buffer of 128 KiB or more is mapped on its own and unmapped
  the moment it is freed;
- every minute, :func:`release_freed_memory`: ``malloc_trim(0)``, which walks
  every arena and returns whole free pages to the kernel.

Hand-written with ctypes: the standard library has no binding for ``mallopt``
or ``malloc_trim`` and no maintained package offers one. Where the C library
is not glibc (musl, macOS) there is nothing to call and both are no-ops.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from bridge.service.blocking import call_blocking

log = logging.getLogger(__name__)

RELEASE_INTERVAL_SECONDS: Final = 60.0
# glibc's starting mmap threshold, made fixed (its dynamic growth is switched off).
MMAP_THRESHOLD_BYTES: Final = 128 * 1024
# The main thread's arena and one more for every other thread: librdkafka's
# threads mostly wait on sockets, so they contend little.
ARENA_MAX: Final = 2
# mallopt's parameter numbers (glibc's malloc.h).
_M_MMAP_THRESHOLD: Final = -3
_M_ARENA_MAX: Final = -8

Release = Callable[[], bool]


def _glibc_function(name: str) -> Any | None:
    """A function of this process's C library, or None where it has none (not glibc)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def tune_allocator(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Two arenas and a fixed mmap threshold; the settings glibc took, by name.

    Call it first thing, before librdkafka's threads exist: an arena already
    made stays. A setting the operator gave glibc in the environment
    (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) is left as given.
    """
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        log.debug("no mallopt in this C library; the allocator keeps its defaults")
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    wanted = {
        "MALLOC_MMAP_THRESHOLD_": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
        "MALLOC_ARENA_MAX": (_M_ARENA_MAX, ARENA_MAX),
    }
    return {
        name: value
        for name, (parameter, value) in wanted.items()
        if name not in environ and mallopt(parameter, value) == 1
    }


def glibc_malloc_trim() -> Release | None:
    """``malloc_trim(0)`` of this process's C library, or None where there is none."""
    trim = _glibc_function("malloc_trim")
    if trim is None:
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
        await call_blocking(release)
