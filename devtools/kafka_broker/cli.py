"""``python -m devtools.kafka_broker start|status|stop`` (wrapped by ``scripts/kafka-local``).

A broker that outlives the command: ``start`` detaches it and records it in the
state file (a second ``start`` reuses it while it answers), ``status`` checks the
record, ``stop`` ends it. Progress goes to stderr; stdout's last line is
``KAFKA_BOOTSTRAP_SERVERS=host:port`` so that scripts can ``eval`` or parse it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import IO

from devtools.kafka_broker.base import (
    ENV_BOOTSTRAP,
    ENV_MODE,
    KafkaBrokerError,
    Mode,
    file_lock,
    say,
)
from devtools.kafka_broker.handle import clear_state, read_state, state_lock_path, write_state
from devtools.kafka_broker.provide import broker_running, start_broker, stop_broker


def _print_address(bootstrap: str, out: IO[str]) -> None:
    print(f"{ENV_BOOTSTRAP}={bootstrap}", file=out, flush=True)


def cli_start(mode: Mode | None, timeout: float | None) -> int:
    external = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if external:
        say(f"{ENV_BOOTSTRAP} is already set; not starting a broker")
        _print_address(external, sys.stdout)
        return 0
    with file_lock(state_lock_path()):
        current = read_state()
        if current is not None:
            if broker_running(current):
                say(f"reusing the running {current.kind} broker at {current.bootstrap}")
                _print_address(current.bootstrap, sys.stdout)
                return 0
            say(f"recorded {current.kind} broker at {current.bootstrap} is gone; cleaning up")
            with contextlib.suppress(Exception):
                stop_broker(current)
            clear_state()
        handle = start_broker(detach=True, timeout=timeout, mode=mode)
        write_state(handle)
    _print_address(handle.bootstrap, sys.stdout)
    return 0


def cli_stop() -> int:
    with file_lock(state_lock_path()):
        current = read_state()
        if current is None:
            say("no local broker recorded; nothing to stop")
            return 0
        say(f"stopping {current.kind} broker at {current.bootstrap}")
        stop_broker(current)
        clear_state()
    say("stopped")
    return 0


def cli_status() -> int:
    current = read_state()
    if current is None:
        print("kafka: not running")
        return 1
    if not broker_running(current):
        print(f"kafka: not running (recorded {current.kind} broker at {current.bootstrap} is gone)")
        return 1
    if current.kind == "local":
        what = f"Apache Kafka {current.version}, pid {current.pid}"
    else:
        what = f"container {(current.container_id or '')[:12]} ({current.version})"
    print(f"kafka: running, {what}")
    if current.log_file:
        print(f"log: {current.log_file}")
    _print_address(current.bootstrap, sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kafka-local",
        description="Start, stop or inspect the local Kafka broker used by tests.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a broker in the background (or reuse it)")
    start.add_argument(
        "--mode",
        choices=("auto", "docker", "local"),
        default=None,
        help=f"where the broker comes from (default: ${ENV_MODE} or auto)",
    )
    start.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait until it answers"
    )
    sub.add_parser("stop", help="stop the broker started by `start`")
    sub.add_parser("status", help="exit 0 if the broker runs, 1 if not")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            return cli_start(args.mode, args.timeout)
        if args.command == "stop":
            return cli_stop()
        return cli_status()
    except KafkaBrokerError as exc:
        print(f"kafka-broker: error: {exc}", file=sys.stderr)
        return 2
