"""call_blocking: results and errors come back, the pool is bounded, and a stuck call
never keeps the process from exiting (the reason it exists: docs/architecture.md)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bridge.service.blocking import DaemonPool, call_blocking
from tests.support.waiting import wait_until, wait_until_async

ROOT = Path(__file__).resolve().parents[2]
EXIT_BOUND_S = 60.0  # generous for a loaded machine; a hang is for ever

# Each body defines ``block(started)``: set ``started``, then block far longer than the bound.
BLOCKERS = {
    "an event nobody sets": """
        def block(started):
            started.set()
            threading.Event().wait()
    """,
    "a sleep": """
        def block(started):
            started.set()
            time.sleep(3600)
    """,
    "a librdkafka consume from a broker that is not there": """
        from confluent_kafka import Consumer
        def block(started):
            consumer = Consumer({"bootstrap.servers": "127.0.0.1:9", "group.id": "exit-test"})
            consumer.subscribe(["exit-test"])
            started.set()
            consumer.consume(num_messages=1, timeout=3600)
    """,
}

# How main leaves the blocked call behind.
ENDINGS = {
    "main returns with the call pending": "pass",
    "main cancels the waiting task": "task.cancel()",
}

SCRIPT = """
import asyncio, threading, time
from bridge.service.blocking import call_blocking
{blocker}
async def main():
    started = threading.Event()
    task = asyncio.ensure_future(call_blocking(block, started))
    assert await call_blocking(started.wait, 30.0), "the blocked call never started"
    {ending}
    print("main returned", flush=True)
asyncio.run(main())
"""


@pytest.mark.parametrize("ending", sorted(ENDINGS))
@pytest.mark.parametrize("blocker", sorted(BLOCKERS))
def test_a_blocked_call_does_not_keep_the_process_alive(blocker: str, ending: str) -> None:
    script = SCRIPT.format(blocker=textwrap.dedent(BLOCKERS[blocker]), ending=ENDINGS[ending])
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXIT_BOUND_S,  # raises TimeoutExpired, failing the test, if the exit hangs
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "main returned" in result.stdout


def test_the_result_and_the_exception_come_back() -> None:
    async def main() -> int:
        with pytest.raises(ZeroDivisionError):
            await call_blocking(divmod, 1, 0)
        return await call_blocking(sum, [1, 2, 3])

    assert asyncio.run(main()) == 6


def test_the_calls_run_on_daemon_threads() -> None:
    async def main() -> threading.Thread:
        return await call_blocking(threading.current_thread)

    thread = asyncio.run(main())
    assert thread is not threading.current_thread()
    assert thread.daemon


def test_a_cancelled_call_hands_its_result_to_abandoned() -> None:
    release = threading.Event()
    abandoned: list[str] = []

    def slow() -> str:
        release.wait(30)
        return "opened"

    async def main() -> None:
        task = asyncio.ensure_future(call_blocking(slow, abandoned=abandoned.append))
        await asyncio.sleep(0)  # let the task submit its call
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await wait_until_async(lambda: abandoned != [], 30, "the result to be abandoned")

    asyncio.run(main())
    assert abandoned == ["opened"]


def test_a_result_after_the_loop_closed_is_abandoned_too() -> None:
    release = threading.Event()
    abandoned: list[str] = []

    def late() -> str:
        release.wait(30)
        return "late"

    async def main() -> None:
        pending = asyncio.ensure_future(call_blocking(late, abandoned=abandoned.append))
        await asyncio.sleep(0)  # one turn: the task submits its call and waits
        assert not pending.done()

    asyncio.run(main())  # cancels the waiting task and closes the loop
    release.set()
    wait_until(lambda: abandoned == ["late"], 30, "the late result to be abandoned")


def test_the_pool_runs_at_most_its_bound_and_the_rest_wait_in_order() -> None:
    pool = DaemonPool(max_threads=2)
    gates = [threading.Event() for _ in range(4)]
    ran: list[int] = []
    try:
        for number, gate in enumerate(gates):

            def call(number: int = number, gate: threading.Event = gate) -> None:
                ran.append(number)
                gate.wait(30)

            pool.submit(call)
        # The first two start at once, in either order; the other two wait.
        wait_until(lambda: sorted(ran) == [0, 1], 30, "the first two calls to start")
        assert pool.running == 2
        gates[0].set()
        wait_until(lambda: len(ran) == 3, 30, "a waiting call to take the freed thread")
        assert ran[2] == 2  # first in, first out
        assert pool.running == 2
        for gate in gates:
            gate.set()
        wait_until(lambda: pool.running == 0, 30, "every thread to end with no work left")
        assert ran[2:] == [2, 3]
    finally:
        for gate in gates:
            gate.set()
