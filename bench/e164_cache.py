"""The cost of ``as: e164`` per record, with and without the conversion's LRU cache.

20,000 conversions drawn from a pool of customers (``--customers``): each round
clears the cache, then times the converter the engine uses (cached) and the
bare phonenumbers path (``_e164.__wrapped__``, what every record paid before).
With all-distinct numbers the cache can only cost; with repeat customers it
should make repeats nearly free. Medians of ``--rounds`` rounds, min and max.

    .venv/bin/python -m bench.e164_cache --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import time
from collections.abc import Callable, Sequence

from bridge.mapping import conversions
from bridge.mapping.conversions import e164_converter


def _numbers(count: int, customers: int, seed: int = 8) -> list[str]:
    rng = random.Random(seed)
    pool = [f"({rng.randint(201, 989)}) 555-{rng.randint(100, 199):04d}" for _ in range(customers)]
    return [rng.choice(pool) for _ in range(count)]


def _per_call_us(convert: Callable[[str], object], numbers: list[str]) -> float:
    started = time.perf_counter()
    for number in numbers:
        with contextlib.suppress(ValueError):  # a refusal is a result too
            convert(number)
    return (time.perf_counter() - started) / len(numbers) * 1e6


def _figures(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} µs (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    cached = e164_converter("US")
    bare = conversions._e164.__wrapped__
    for customers in (args.records, 2_000, 200):
        numbers = _numbers(args.records, customers)
        plain, lru = [], []
        for _ in range(args.rounds):
            plain.append(_per_call_us(lambda text: bare(text, "US"), numbers))
            conversions._e164.cache_clear()
            lru.append(_per_call_us(cached, numbers))
        print(
            f"{customers:>6} customers / {args.records} records: "
            f"uncached {_figures(plain)}, cached {_figures(lru)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
