"""A one-minute soak (bench/soak.py): exactly once through reloads, a kill and a broker restart.

The long run is a benchmark (30 minutes, not in CI); this is the same harness made
short: a broker of the test's own (restarted once), the simulator at the account
limit answering 5 % of requests 503, the configuration swapped between the two
mappings every second, the bridge SIGKILLed once. It asserts what holds however
loaded the machine is: every broker-confirmed record's event accepted exactly once
by id, nothing unexpected, nothing dead-lettered, a clean last exit, and no growth
of threads or non-socket descriptors beyond a loose bound. No timing is asserted.

The analysis the verdict rests on (growth, trend, problems) is checked on its own
at the bottom, without Kafka, so a broken verdict cannot pass the soak silently.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from subprocess import PIPE

import pytest

from bench.soak import (
    Chaos,
    Growth,
    Sample,
    Sampler,
    SoakResult,
    SoakSettings,
    growth,
    problems,
    read_process,
    report,
    run_soak,
    segment_growth,
)
from devtools.kafka_broker import BrokerHandle
from tests.support.waiting import wait_until

SHORT = SoakSettings(
    seconds=60,
    reload_every=1.0,
    restart_every=35,  # one broker restart, in the last process's life
    kill_at=(20,),
    sample_every=1.0,
    warmup=10,
    drain_timeout=150,  # a stuck drain fails with its figures, inside pytest's 300 s
    partitions=3,
)
# Loose bounds for one short process (the 30-minute run judges growth in per cent):
# threads may grow by the asyncio executor's lazy workers and librdkafka's broker
# threads after a restart; descriptors other than sockets should not move at all.
MAX_EXTRA_THREADS = 6
MAX_EXTRA_OTHER_FILES = 8


@pytest.mark.kafka
@pytest.mark.slow
def test_short_soak_sends_every_expected_event_once_and_leaks_nothing(
    own_broker: BrokerHandle, tmp_path: Path
) -> None:
    result = run_soak(SHORT, tmp_path / "soak", broker=own_broker)
    seen = report(result)  # every figure, in each failure's message (logs: tmp_path/soak)

    assert result.expected > 0, seen
    assert (result.producer_failures, result.unflushed) == (0, 0), seen
    assert (result.missing, result.unexpected) == (0, 0), seen
    assert result.accepted_distinct == result.expected, seen
    assert result.dead_letters == 0, seen
    assert result.exit_status == 0, seen
    assert result.chaos.unexpected_exits == 0, seen
    # The chaos really happened, and both mappings made events.
    assert (result.chaos.kills, result.chaos.broker_restarts) == (1, 1), seen
    assert result.chaos.reloads_ok >= 2, seen
    assert result.chaos.reloads_failed == 0, seen
    assert set(result.events_by_mapping) == {"a", "b"}, seen
    last = _post_warmup(result, segment=len(result.segments) - 1)
    assert len(last) >= 6, f"too few samples after the warm-up to judge\n{seen}"
    assert _spread(s.threads for s in last) <= MAX_EXTRA_THREADS, seen
    assert _spread(s.other_files for s in last) <= MAX_EXTRA_OTHER_FILES, seen


def _post_warmup(result: SoakResult, segment: int) -> list[Sample]:
    return [s for s in result.samples if s.segment == segment and s.at >= SHORT.warmup]


def _spread(values: Iterable[int]) -> int:
    found = list(values)
    return max(found) - min(found)


# --------------------------------------------------------------------------- the verdict


def _samples(values: Sequence[float], *, segment: int = 0, start: float = 0.0) -> list[Sample]:
    return [
        Sample(segment, start + index, value, int(value), int(value), int(value))
        for index, value in enumerate(values)
    ]


@pytest.mark.parametrize(
    "values",
    [
        [100.0] * 30,  # flat
        [100.0, 101.0, 99.0, 100.0, 102.0, 98.0] * 5,  # noise around a level
        [100.0] * 10 + [130.0] * 2 + [100.0] * 18,  # one burst in the middle, back again
        [110.0 - index for index in range(5)] + [100.0] * 25,  # settling down
    ],
)
def test_flat_series_are_flat(values: list[float]) -> None:
    found = growth(values)
    assert found is not None
    assert found.flat(5.0), found


@pytest.mark.parametrize(
    ("values", "rising"),
    [
        ([100.0 + index for index in range(30)], True),  # a leak: one more each sample
        ([100.0 + index * 0.3 for index in range(60)], True),  # slow, but steady
        ([100.0] * 20 + [110.0] * 10, False),  # a step up at the end: growth, no trend
        ([20.0] * 10 + [21.0] * 10 + [22.0] * 10, True),  # threads climbing one by one
    ],
)
def test_growing_series_are_not_flat(values: list[float], rising: bool) -> None:
    found = growth(values)
    assert found is not None
    assert not found.flat(5.0), found
    assert found.rising is rising
    assert found.growth_pct > 5.0 or rising


def test_too_few_samples_give_no_verdict() -> None:
    assert growth([1.0, 2.0, 3.0]) is None


def test_segments_are_judged_apart_and_after_their_warm_up() -> None:
    # Segment 0 grows during its warm-up only; segment 1 restarts lower (a new process).
    samples = _samples([50.0, 80.0] + [100.0] * 20) + _samples([60.0] * 20, segment=1)
    figures = segment_growth(samples, 0, warmup=2)
    assert all(found is not None and found.flat(5.0) for found in figures.values())
    later = segment_growth(samples, 1, warmup=2)
    assert all(found is not None and found.growth_pct == 0 for found in later.values())
    leaking = segment_growth(_samples([100.0 + index for index in range(30)]), 0, warmup=2)
    assert all(found is not None and found.slope_per_min > 0 for found in leaking.values())


def _result(**changes: object) -> SoakResult:
    base: dict[str, object] = {
        "settings": {"max_growth_pct": 5.0},
        "produced": 10,
        "producer_failures": 0,
        "unflushed": 0,
        "expected": 10,
        "accepted_distinct": 10,
        "missing": 0,
        "unexpected": 0,
        "repeats": 3,  # re-sends after a kill: reported, never a failure
        "sim_stats": {},
        "events_by_mapping": {"a": 5, "b": 5},
        "dead_letters": 0,
        "exit_status": 0,
        "chaos": Chaos(),
        "segments": [],
        "segment_seconds": [],
        "samples": [],
    }
    base.update(changes)
    return SoakResult(**base)  # type: ignore[arg-type]


def _leak() -> Growth:
    found = growth([100.0 + index for index in range(30)])
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"missing": 1, "accepted_distinct": 9}, "missing"),
        ({"unexpected": 2, "accepted_distinct": 12}, "unexpected"),
        ({"dead_letters": 1}, "dead-lettered"),
        ({"exit_status": 1}, "exited with 1"),
        ({"exit_status": None}, "exited with None"),
        ({"producer_failures": 4}, "refused"),
        ({"chaos": Chaos(unexpected_exits=1)}, "by itself"),
        ({"segments": [{"threads": _leak()}]}, "threads grew"),
    ],
)
def test_every_shortfall_fails_the_run(changes: dict[str, object], words: str) -> None:
    result = _result(**changes)
    found = problems(result, None, 5.0)
    assert any(words in problem for problem in found), found


def test_a_clean_run_with_repeats_passes() -> None:
    assert problems(_result(), None, 5.0) == []
    assert problems(_result(), RuntimeError("boom"), 5.0) == ["the producer failed: RuntimeError"]


def test_read_process_sees_this_process_and_none_for_a_gone_one() -> None:
    found = read_process(os.getpid())
    assert found is not None
    rss_mb, open_files, other_files, threads = found
    assert rss_mb > 0
    assert open_files >= other_files >= 0
    assert threads >= 1
    assert read_process(2**22 + 1) is None  # above the kernel's largest pid


def test_read_process_gives_none_for_a_killed_process_not_yet_reaped(tmp_path: Path) -> None:
    # After a SIGKILL the bridge is a zombie until reaped: /proc still lists it, without memory.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        status = Path(f"/proc/{child.pid}/status")
        wait_until(lambda: "State:\tZ" in status.read_text(), 30, "the child to be a zombie")
        assert read_process(child.pid) is None
    finally:
        child.wait(timeout=30)


def test_the_sampler_lets_go_of_a_process_before_it_is_stopped() -> None:
    # A stopping bridge sheds threads and descriptors: sampled, that looked like a
    # change of its own (the short soak once saw 21 -> 2 threads during SIGTERM).
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=PIPE)
    sampler = Sampler(every=0.01)
    sampler.start()
    try:
        sampler.follow(child.pid)
        wait_until(lambda: len(sampler.samples) >= 2, 30, "samples of the child")
        sampler.let_go()
        kept = len(sampler.samples)
        rounds = sampler.rounds
        wait_until(lambda: sampler.rounds >= rounds + 5, 30, "more sampler rounds")
        assert len(sampler.samples) == kept
        sampler.follow(child.pid)  # a new process (here the same one) is a new segment
        wait_until(lambda: len(sampler.samples) > kept, 30, "samples of the next segment")
        assert {s.segment for s in sampler.samples} == {0, 1}
    finally:
        sampler.stopping.set()
        sampler.join(timeout=30)
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
