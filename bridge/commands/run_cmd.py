"""``vibes-bridge run``: the service (options only; the work is in ``bridge.service``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from bridge.commands.common import config_option, exit_with_problems, load_or_exit
from bridge.errors import ConfigError

_LEVELS = ("debug", "info", "warning", "error")


@click.command("run", short_help="Consume, map, deliver to Vibes, commit, dead-letter.")
@config_option
@click.option(
    "--log-level",
    type=click.Choice(_LEVELS),
    default="info",
    envvar="BRIDGE_LOG_LEVEL",
    show_default=True,
    help="JSON log lines on stdout at this level; per-record lines only at debug.",
)
def run_command(config_path: Path, log_level: str) -> None:
    """Run the bridge until SIGTERM or SIGINT: consume the source topics, map each record,
    deliver the events to the Vibes Event API at the account's rate, commit offsets in
    order, and dead-letter what can never succeed. Serves /metrics, /healthz and /readyz
    on the management port. Exit 0 after a graceful stop, 1 on a fatal error, 2 on a
    bad configuration."""
    from bridge.service.allocator import tune_allocator
    from bridge.service.logs import configure_json_logging
    from bridge.service.runner import run_service

    tune_allocator()  # before any thread: see bridge/service/allocator.py
    configure_json_logging(log_level)
    loaded = load_or_exit(config_path)
    try:
        status = asyncio.run(run_service(loaded))
    except ConfigError as exc:  # a secret file unreadable when the service reads it
        loaded.close()
        exit_with_problems(exc.problems)
    raise SystemExit(status)
