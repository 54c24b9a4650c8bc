"""What several commands share: the ``-c/--config`` option and loading with exit status 2."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from bridge.errors import ConfigError, Problem
from bridge.loading import CONFIG_ENV, LoadedBridge, load_bridge

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_CONFIG = 2

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    """``-c/--config FILE``, also read from ``BRIDGE_CONFIG``."""
    decorate = click.option(
        "-c",
        "--config",
        "config_path",
        envvar=CONFIG_ENV,
        required=True,
        # Not dir_okay=False: the loader refuses every non-regular path (a directory,
        # a FIFO, /dev/zero) with the same one line, without opening it for reading.
        type=click.Path(path_type=Path),
        help=f"The configuration file (default: ${CONFIG_ENV}).",
    )
    return decorate(function)


def time_option(
    _context: click.Context, parameter: click.Parameter, value: str | None
) -> int | None:
    """``--since``/``--until``: ISO 8601 or a duration ago, as epoch milliseconds."""
    from datetime import UTC, datetime

    from bridge.replay import parse_time

    if value is None:
        return None
    try:
        return parse_time(value, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=parameter) from None


def load_or_exit(config_path: Path) -> LoadedBridge:
    """Load the file; on problems print each (and any warning) to stderr and exit 2.

    The caller closes what it gets (``with load_or_exit(path) as loaded:``).
    """
    try:
        loaded = load_bridge(config_path)
    except ConfigError as exc:
        exit_with_problems(sorted((*exc.warnings, *exc.problems), key=_line))
    for warning in loaded.warnings:
        click.echo(str(warning), err=True)
    return loaded


def _line(problem: Problem) -> int:
    return problem.line or 0


def exit_with_problems(problems: Sequence[Problem]) -> NoReturn:
    """Print each problem of a file to stderr and exit 2 (bad configuration)."""
    for problem in problems:
        click.echo(str(problem), err=True)
    raise SystemExit(EXIT_CONFIG)
