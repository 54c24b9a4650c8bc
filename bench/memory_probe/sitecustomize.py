"""Where a process's memory goes over a long run: Python's heap against glibc's against RSS.

Put this directory first on ``PYTHONPATH`` of a process (``bench/soak.py
--trace-memory`` does it for each bridge it starts) and set
``BRIDGE_MEMORY_PROBE`` to a directory: every ``BRIDGE_MEMORY_PROBE_EVERY``
seconds (60) one JSON line goes to ``probe-<pid>.jsonl`` there with

- ``rss_mb``: resident memory (what the soak judges);
- ``malloc_in_use_mb`` / ``malloc_free_mb``: glibc's ``mallinfo2`` (every
  allocator user: Python's objects above 512 bytes, librdkafka, OpenSSL);
- ``py_blocks``: blocks Python's own allocator has handed out (cheap, always);
- with ``BRIDGE_MEMORY_PROBE_FRAMES`` above 0 (default 0: tracemalloc slows the
  bridge several times over), ``traced_mb`` and the ``top`` allocation sites by
  growth since the first sample.

RSS rising with ``malloc_in_use`` flat is fragmentation or freed memory not given
back; ``traced`` rising names the Python code that keeps things. A diagnostic for
benchmarks only: tracemalloc costs CPU, so it is never on in the product.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

_TOP = 12


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_mb() -> tuple[float, float]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return (-1.0, -1.0)
    return ((info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1.0


def _probe(directory: Path, every: float) -> None:
    out = directory / f"probe-{os.getpid()}.jsonl"
    began = time.monotonic()
    first: tracemalloc.Snapshot | None = None
    while True:
        time.sleep(every)
        in_use, free = _malloc_mb()
        line: dict[str, object] = {
            "t": round(time.monotonic() - began),
            "rss_mb": round(_rss_mb(), 1),
            "malloc_in_use_mb": round(in_use, 1),
            "malloc_free_mb": round(free, 1),
            "py_blocks": sys.getallocatedblocks(),
            "threads": threading.active_count(),
        }
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            first = snapshot if first is None else first
            line["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
            line["top"] = [
                {
                    "growth_kb": round(d.size_diff / 1024, 1),
                    "count_growth": d.count_diff,
                    "where": [f"{f.filename}:{f.lineno}" for f in d.traceback][-3:],
                }
                for d in snapshot.compare_to(first, "traceback")[:_TOP]
            ]
        with out.open("a") as handle:
            handle.write(json.dumps(line) + "\n")


def _start() -> None:
    directory = os.environ.get("BRIDGE_MEMORY_PROBE")
    if not directory:
        return
    frames = int(os.environ.get("BRIDGE_MEMORY_PROBE_FRAMES", "0"))
    if frames > 0:
        tracemalloc.start(frames)
    every = float(os.environ.get("BRIDGE_MEMORY_PROBE_EVERY", "60"))
    thread = threading.Thread(
        target=_probe, args=(Path(directory), every), name="memory-probe", daemon=True
    )
    thread.start()


_start()
