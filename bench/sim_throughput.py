"""Throughput of ``vibes-bridge sim`` with zero latency, on one core.

The simulator runs as a subprocess pinned to one core (``taskset -c 0`` when
available); the load generator runs in another process pinned to the other
core, so the figure is the server's alone. ``wrk`` is the generator when it is
installed (``apt-get install wrk``): it costs far less CPU per request than any
Python client. Without it a small aiohttp client in a separate process stands
in, and the figure is then a lower bound. Every run is bounded in time and only
talks to loopback; the script stops the simulator itself.

    .venv/bin/python bench/sim_throughput.py --runs 5 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
USERNAME = PASSWORD = "demo"
COMPANY_KEY = "demo"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0

# A realistic body; the Lua script gives every request its own event_id so
# the run measures "sent" events, not the duplicate path.
WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Version"] = "2"
wrk.headers["Authorization"] = "%(authorization)s"

local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
end

local counter = 0
function request()
  counter = counter + 1
  local body = string.format(
    '{"event_id":"bench-%%d-%%d","event_type":"order_shipped",' ..
    '"event_data":{"external_person_id":"person-%%d","order_id":"order-%%d",' ..
    '"carrier":"UPS","delivery_time":"5:00 PM"},"debug_data":{"source":"bench"}}',
    tid or 0, counter, counter, counter)
  return wrk.format(nil, "/companies/%(company)s/events", nil, body)
end
"""


def pinned(cpu: int | None, argv: Sequence[str]) -> list[str]:
    """``argv`` under ``taskset -c CPU`` when taskset exists and a CPU was asked for."""
    taskset = shutil.which("taskset")
    if cpu is None or taskset is None:
        return list(argv)
    return [taskset, "-c", str(cpu), *argv]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def simulator(cpu: int | None, extra: Sequence[str]) -> Iterator[tuple[str, int]]:
    """A running simulator's base URL and pid; SIGTERM and a bounded wait on the way out."""
    argv = [sys.executable, "-m", "bridge", "sim", "--port", "0", "--log-level", "warning", *extra]
    proc = subprocess.Popen(
        pinned(cpu, argv),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            if line.startswith("listening on "):
                break
        if not line.startswith("listening on "):
            raise RuntimeError("the simulator did not start")
        yield line.removeprefix("listening on ").strip(), proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sim_json(url: str, path: str, method: str = "GET") -> dict[str, int]:
    """One control call to the simulator (stats or reset)."""
    request = urllib.request.Request(
        url + path, method=method, data=b"{}" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, int] = json.loads(response.read())
        return data


def run_wrk(url: str, cpu: int | None, duration: float, connections: int, threads: int) -> float:
    """Requests per second as wrk reports them; non-2xx answers fail the run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"authorization": AUTHORIZATION, "company": COMPANY_KEY})
    try:
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "5s",
            "-s",
            script.name,
            url,
        ]
        out = subprocess.run(
            pinned(cpu, argv), capture_output=True, text=True, timeout=duration + 30, check=True
        ).stdout
    finally:
        os.unlink(script.name)
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError("no Requests/sec in wrk's output:\n" + out)
    return float(match.group(1))


def run_python_client(
    url: str, cpu: int | None, duration: float, connections: int, threads: int
) -> float:
    """The same load from an aiohttp client in another process (``--client-process``)."""
    argv = [
        sys.executable,
        __file__,
        "--client-process",
        url,
        "--duration",
        str(duration),
        "--connections",
        str(connections),
    ]
    out = subprocess.run(
        pinned(cpu, argv), capture_output=True, text=True, timeout=duration + 30, check=True
    ).stdout
    return float(out.strip().splitlines()[-1])


async def client_load(url: str, duration: float, connections: int) -> float:
    """Closed-loop load: ``connections`` workers POST back to back until the deadline."""
    import aiohttp

    headers = {"Authorization": AUTHORIZATION, "Content-Type": "application/json"}
    target = f"{url}/companies/{COMPANY_KEY}/events"
    done = 0
    failed = 0
    deadline = time.monotonic() + duration

    async def worker(session: aiohttp.ClientSession, wid: int) -> None:
        nonlocal done, failed
        n = 0
        while time.monotonic() < deadline:
            n += 1
            body = (
                f'{{"event_id":"py-{wid}-{n}","event_type":"order_shipped","event_data":'
                f'{{"external_person_id":"person-{n}","order_id":"order-{n}","carrier":"UPS",'
                '"delivery_time":"5:00 PM"},"debug_data":{"source":"bench"}}'
            )
            async with session.post(target, data=body, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    done += 1
                else:
                    failed += 1

    connector = aiohttp.TCPConnector(limit=connections)
    start = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, i) for i in range(connections)))
    if failed:
        raise RuntimeError(f"{failed} requests did not get 200")
    return done / (time.monotonic() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up load")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "python"], default="auto", help="load generator"
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="core for the simulator")
    parser.add_argument("--client-cpu", type=int, default=1, help="core for the load generator")
    parser.add_argument(
        "--sim-arg", action="append", default=[], help="extra simulator option (repeatable)"
    )
    parser.add_argument("--client-process", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.client_process:
        rate = asyncio.run(client_load(args.client_process, args.duration, args.connections))
        print(f"{rate:.1f}")
        return 0

    cores = os.cpu_count() or 1
    server_cpu = args.server_cpu if cores > 1 else None
    client_cpu = args.client_cpu if cores > 1 else None
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    drive = run_wrk if generator == "wrk" else run_python_client

    rates: list[float] = []
    with simulator(server_cpu, args.sim_arg) as (url, pid):
        print(
            f"simulator at {url}, pinned to cpu {server_cpu}; generator {generator} on cpu "
            f"{client_cpu}, {args.connections} connections, {args.duration:g} s per run"
        )
        if args.warmup > 0:
            drive(url, client_cpu, args.warmup, args.connections, args.threads)
        for run in range(1, args.runs + 1):
            sim_json(url, "/_sim/reset", "POST")
            cpu_before = cpu_seconds(pid)
            rate = drive(url, client_cpu, args.duration, args.connections, args.threads)
            cpu_after = cpu_seconds(pid)
            stats = sim_json(url, "/_sim/stats")
            if stats["sent"] != stats["received"]:
                raise RuntimeError(f"not every request was sent: {stats}")
            rates.append(rate)
            cost = ""
            if cpu_before is not None and cpu_after is not None and stats["received"]:
                # CPU per request is steadier than requests/s on a shared machine.
                micros = (cpu_after - cpu_before) * 1e6 / stats["received"]
                cost = f", server CPU {micros:.0f} us/request"
            print(f"run {run}: {rate:,.0f} requests/s ({stats['sent']:,} events sent{cost})")
    print(f"median: {statistics.median(rates):,.0f} requests/s over {len(rates)} runs")
    if generator == "python":
        print("(the Python client saturates first: read this as a lower bound)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
