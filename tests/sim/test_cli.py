"""The ``vibes-bridge sim`` command: options, start-up line, signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest
from click.testing import CliRunner

from bridge.commands.sim_cmd import sim_command
from tests.support.paths import ROOT
from tests.support.simulator import SIM_COMMAND, SimProcess, assert_envelope, event, stats
from tests.support.waiting import wait_until

Start = Callable[..., SimProcess]


def test_help_documents_every_knob() -> None:
    result = subprocess.run(
        [*SIM_COMMAND, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    text = result.stdout
    for param in sim_command.params:
        for opt in param.opts:
            assert opt in text, opt
    for required in [
        "--host",
        "--port",
        "--company-key",
        "--username",
        "--password",
        "VIBES_USERNAME",
        "VIBES_PASSWORD",
        "--latency-ms",
        "--latency-jitter-ms",
        "--rate-limit",
        "--error-rate",
        "--error-500-rate",
        "--timeout-rate",
        "--timeout-hold-s",
        "--drop-rate",
        "--max-events",
        "/_sim/faults",
    ]:
        assert required in text, required


@pytest.mark.parametrize(
    "args",
    [
        ["--error-rate", "1.5"],
        ["--error-rate", "-0.1"],
        ["--latency-ms", "-5"],
        ["--rate-limit", "-1"],
        ["--port", "70000"],
        ["--error-rate", "0.6", "--drop-rate", "0.6"],
        ["--company-key", ","],
        ["--max-events", "-1"],
        ["--latency-ms", "1e300"],
        ["--timeout-hold-s", "3601"],
        ["--rate-limit-burst", "1e300"],
    ],
)
def test_out_of_range_options_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(sim_command, args)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--rate-limit", "5e-324"], "--rate-limit"),
        (["--rate-limit", "0.0009"], "--rate-limit"),
        (["--rate-limit", "nan"], "--rate-limit"),
        (["--latency-ms", "nan"], "--latency-ms"),
        (["--timeout-hold-s", "nan"], "--timeout-hold-s"),
        (["--error-rate", "nan"], "--error-rate"),
    ],
)
def test_values_inside_the_outer_bounds_but_refused_name_the_option(
    args: list[str], option: str
) -> None:
    """Denormal rates and NaN pass click's range check; the knob ranges refuse them."""
    result = CliRunner().invoke(sim_command, args)
    assert result.exit_code == 2, result.output
    assert f"{option} must be" in result.output


def test_listening_line_and_default_credentials(start: Start) -> None:
    sim = start()
    assert sim.url.startswith("http://127.0.0.1:")
    client = sim.client()
    assert sim.post_event(client, event("cli-1")).status_code == 200


def test_company_keys_and_credentials_from_options(start: Start) -> None:
    sim = start(
        "--company-key",
        "acme",
        "--company-key",
        "globex,initech",
        "--username",
        "u1",
        "--password",
        "p1",
    )
    client = sim.client(auth=("u1", "p1"))
    for key in ["acme", "globex", "initech"]:
        assert sim.post_event(client, event("k"), company_key=key).status_code == 200
    assert_envelope(sim.post_event(client, event("k")), 404)  # "demo" is not served
    assert_envelope(sim.post_event(sim.client(), event("k"), company_key="acme"), 401)


def test_credentials_from_environment(start: Start) -> None:
    sim = start(env={"VIBES_USERNAME": "env-user", "VIBES_PASSWORD": "env-pass"})
    assert sim.post_event(sim.client(auth=("env-user", "env-pass")), event()).status_code == 200
    assert_envelope(sim.post_event(sim.client(), event()), 401)


def test_error_rate_option_then_runtime_change(start: Start) -> None:
    sim = start("--error-rate", "1.0")
    client = sim.client()
    assert_envelope(sim.post_event(client, event("cli-503")), 503)
    httpx.post(f"{sim.url}/_sim/faults", json={"error_rate": 0}, timeout=10).raise_for_status()
    assert sim.post_event(client, event("cli-503")).status_code == 200


def test_rate_limit_option_answers_429_with_retry_after(start: Start) -> None:
    sim = start("--rate-limit", "1", "--rate-limit-burst", "2")
    client = sim.client()
    statuses = [sim.post_event(client, event(f"r{i}")).status_code for i in range(6)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses
    limited = sim.post_event(client, event("last"))
    if limited.status_code == 429:
        assert int(limited.headers["retry-after"]) >= 1
    assert stats(sim)["rate_limited"] >= 1


def test_max_events_bounds_the_event_log(start: Start) -> None:
    sim = start("--max-events", "3")
    client = sim.client()
    for i in range(5):
        assert sim.post_event(client, event(f"m{i}")).status_code == 200
    kept = httpx.get(f"{sim.url}/_sim/events", timeout=10).json()
    assert [e["event_id"] for e in kept] == ["m2", "m3", "m4"]
    assert stats(sim)["sent"] == 5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_with_exit_0(start: Start, signum: int) -> None:
    sim = start()
    assert sim.post_event(sim.client(), event()).status_code == 200
    assert sim.stop(signum) == 0
    assert "Traceback" not in sim.log()


def test_sigterm_releases_held_requests_promptly(start: Start) -> None:
    sim = start("--timeout-rate", "1", "--timeout-hold-s", "300")
    held = subprocess.Popen(  # a client in another process, stuck on the held request
        [
            sys.executable,
            "-c",
            "import sys, urllib.request as u\n"
            "r = u.Request(sys.argv[1], data=b'{}', headers={'Content-Type': 'application/json'})\n"
            "try:\n    u.urlopen(r, timeout=60)\nexcept Exception:\n    pass\n",
            f"{sim.url}/companies/demo/events",
        ]
    )
    try:
        wait_until(lambda: stats(sim)["faults_timeout"] == 1, what="the request to be held")
        started = time.monotonic()
        assert sim.stop() == 0
        assert time.monotonic() - started < 5
        assert held.wait(10) == 0
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()


def test_port_in_use_is_reported(start: Start) -> None:
    sim = start()
    port = sim.url.rsplit(":", 1)[1]
    result = subprocess.run(
        [*SIM_COMMAND, "--port", port],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_uvloop_option(start: Start) -> None:
    pytest.importorskip("uvloop")
    sim = start("--uvloop")
    assert sim.post_event(sim.client(), event("uv-1")).status_code == 200
    assert sim.stop() == 0
