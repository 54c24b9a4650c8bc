"""Start-up time of a ``vibes-bridge`` command, and which heavy libraries it imports.

    .venv/bin/python bench/cli_startup.py [--runs 10] [--checkout DIR] [--] [ARGS ...]

ARGS default to ``validate --help``. Each run is a fresh process of the
installed console script (``vibes-bridge`` next to this interpreter), timed
from spawn to exit; with ``--checkout DIR`` it is ``python -m bridge`` run in
DIR instead, so that two checkouts (say ``git archive`` of the commit before
a change, and the work tree) compare on one interpreter in one session;
the figures are the medians of the runs' wall and CPU times, with the
quickest and slowest beside them.
A last run under ``python -X importtime`` lists which of the heavy third-party
packages (the simulator's web framework, Kafka, HTTP, metrics) the command
loaded, since what a command imports is what its start-up pays for.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

HEAVY_PACKAGES = ("aiohttp", "confluent_kafka", "httpx", "prometheus_client", "fastavro")
DEFAULT_ARGS = ("validate", "--help")


def command(args: Sequence[str], checkout: Path | None) -> list[str]:
    """The console script as a user runs it; ``python -m bridge`` for a checkout."""
    if checkout is not None:
        return [sys.executable, "-m", "bridge", *args]
    script = Path(sys.executable).with_name("vibes-bridge")
    if script.exists():
        return [str(script), *args]
    found = shutil.which("vibes-bridge")
    if found is not None:
        return [found, *args]
    return [sys.executable, "-m", "bridge", *args]


def timed_run(argv: Sequence[str], cwd: Path | None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run; a failing command stops the bench.

    On a shared machine the wall time swings with the neighbours' load; the CPU
    time the process itself spent is the steadier figure.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def heavy_imports(args: Sequence[str], cwd: Path | None) -> list[str]:
    """The heavy packages that ``python -m bridge ARGS`` imports (from ``-X importtime``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bridge", *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    return [name for name in HEAVY_PACKAGES if name in loaded]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs (default 10)")
    parser.add_argument(
        "--checkout", type=Path, default=None, help="run `python -m bridge` in this checkout"
    )
    parser.add_argument(
        "args", nargs="*", help="the command's arguments (default: validate --help)"
    )
    options = parser.parse_args(argv)
    args = options.args or list(DEFAULT_ARGS)
    cwd = options.checkout
    argv_run = command(args, cwd)
    timed_run(argv_run, cwd)  # warm the page cache and the bytecode cache first
    runs = [timed_run(argv_run, cwd) for _ in range(options.runs)]
    print(f"command: {' '.join(argv_run)}" + (f" (in {cwd})" if cwd else ""))
    for label, values in (("wall", [r[0] for r in runs]), ("cpu", [r[1] for r in runs])):
        ms = sorted(value * 1000 for value in values)
        print(
            f"{label} over {options.runs} runs: median {statistics.median(ms):.0f} ms "
            f"(min {ms[0]:.0f}, max {ms[-1]:.0f})"
        )
    print(f"heavy packages imported: {', '.join(heavy_imports(args, cwd)) or 'none'}")


if __name__ == "__main__":
    main()
