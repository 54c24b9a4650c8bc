"""Freed C-heap memory goes back to the system (bridge.service.allocator.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from bridge.service.allocator import (
    ARENA_MAX,
    MMAP_THRESHOLD_BYTES,
    glibc_malloc_trim,
    release_freed_memory,
    tune_allocator,
)
from tests.support.paths import ROOT
from tests.support.waiting import wait_until_async

# Each script below runs in a process of its own, measuring itself with this.
_RSS_MB = textwrap.dedent(
    """
    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    """
)

# A burst like librdkafka's fetch buffers: many blocks malloc'ed on a worker
# thread (its own arena), all freed but every 64th, which pins the arena so
# free() alone cannot shrink it. RSS is read before the burst, after the free,
# and after one release.
_BURST = _RSS_MB + textwrap.dedent(
    """
    import json, threading
    from bridge.service.allocator import glibc_malloc_trim

    kept = []
    def burst():
        blocks = [bytes(4000) for _ in range(40_000)]  # about 160 MB, each block malloc'ed
        kept.extend(blocks[::64])
        del blocks

    before = rss_mb()
    worker = threading.Thread(target=burst)
    worker.start()
    worker.join()
    freed = rss_mb()
    released = glibc_malloc_trim()()
    after = rss_mb()
    print(json.dumps({"before": before, "freed": freed, "after": after, "released": released}))
    """
)


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="the C library has no malloc_trim")
def test_a_release_returns_a_freed_burst_that_free_alone_kept() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _BURST], capture_output=True, text=True, timeout=120, check=True
    )
    figures = json.loads(done.stdout)
    burst_mb = figures["freed"] - figures["before"]
    # Without a release the freed burst stays resident (what the soak saw grow)...
    assert burst_mb > 100, figures
    # ...and one release gives most of it back.
    assert figures["released"] is True
    assert figures["after"] - figures["before"] < 0.25 * burst_mb, figures


def test_the_release_runs_every_interval_until_cancelled() -> None:
    calls: list[int] = []

    def release() -> bool:
        calls.append(1)
        return True

    async def scenario() -> None:
        task = asyncio.ensure_future(release_freed_memory(release, interval=0.01))
        await wait_until_async(lambda: len(calls) >= 3, 30, "three releases")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_without_malloc_trim_the_task_ends_at_once() -> None:
    async def scenario() -> None:
        await asyncio.wait_for(release_freed_memory(None, interval=0.01), 5)

    asyncio.run(scenario())


# Buffers of a megabyte (librdkafka's fetched batches), each followed by a small
# block that outlives it; one large block freed first, which raises glibc's
# dynamic mmap threshold so the rest come from the thread's arena, pinned there.
_PINNED_BUFFERS = _RSS_MB + textwrap.dedent(
    """
    import json, sys, threading
    from bridge.service.allocator import tune_allocator

    taken = tune_allocator() if sys.argv[1] == "tuned" else {}

    kept = []
    def burst():
        first = bytearray(1 << 20)
        del first
        buffers = []
        for _ in range(80):
            buffers.append(bytearray(1 << 20))
            kept.append(bytearray(2000))
        del buffers

    before = rss_mb()
    worker = threading.Thread(target=burst)
    worker.start()
    worker.join()
    print(json.dumps({"taken": taken, "grew_mb": rss_mb() - before}))
    """
)


def _pinned_buffers(mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PINNED_BUFFERS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="the C library is not glibc")
def test_tuned_large_buffers_go_back_when_freed_though_smaller_blocks_pin_them() -> None:
    default = _pinned_buffers("default")
    tuned = _pinned_buffers("tuned")
    assert default["grew_mb"] > 60, default  # 80 MB freed, kept resident by default
    assert tuned["grew_mb"] < 10, tuned
    assert tuned["taken"] == {
        "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD_BYTES,
        "MALLOC_ARENA_MAX": ARENA_MAX,
    }


@pytest.mark.skipif(glibc_malloc_trim() is None, reason="the C library is not glibc")
@pytest.mark.parametrize(
    ("environ", "left_alone"),
    [
        ({"MALLOC_ARENA_MAX": "4"}, {"MALLOC_ARENA_MAX"}),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, {"MALLOC_MMAP_THRESHOLD_"}),
        (
            {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "1"},
            {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"},
        ),
    ],
)
def test_a_setting_the_operator_gave_glibc_is_left_as_given(
    environ: dict[str, str], left_alone: set[str]
) -> None:
    taken = tune_allocator(environ)
    assert not left_alone & set(taken)
    assert set(taken) == {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"} - left_alone
