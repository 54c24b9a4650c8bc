"""Fixtures that run the simulator as a real subprocess (tests/support/simulator.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tests.support.simulator import SimProcess, reset, start_sim


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    """Start simulators with test-specific options; all are stopped afterwards."""
    started: list[SimProcess] = []

    def _start(*args: str, env: Mapping[str, str] | None = None) -> SimProcess:
        sim = start_sim(args, tmp_path / f"sim-{len(started)}.log", env)
        started.append(sim)
        return sim

    yield _start
    for sim in started:
        sim.stop()


@pytest.fixture(scope="module")
def shared_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    """One simulator for a whole module, serving two company keys."""
    log_path = tmp_path_factory.mktemp("sim") / "sim.log"
    sim = start_sim(["--company-key", "demo,other", "--seed", "7"], log_path)
    yield sim
    assert sim.stop() == 0, sim.log()
    log = sim.log()
    for secret in ("person-1", "ZGVtbzpkZW1v", "demo:demo", "order_shipped"):
        assert secret not in log, f"the simulator logged {secret!r}"


@pytest.fixture
def sim(shared_sim: SimProcess) -> SimProcess:
    """The shared simulator, back to default knobs with empty events and stats."""
    return reset(shared_sim)


@pytest.fixture
def client(sim: SimProcess) -> httpx.Client:
    """An authenticated client on the shared simulator."""
    return sim.client()
