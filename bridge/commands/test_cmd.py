"""``vibes-bridge test``: run a file of mapping unit tests against a configuration."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.commands.common import (
    EXIT_FAILURES,
    config_option,
    exit_with_problems,
    load_or_exit,
)
from bridge.config import load_yaml
from bridge.errors import ConfigError
from bridge.mapping.cases import parse_cases, run_case


@click.command("test", short_help="Run mapping unit tests (YAML cases).")
@config_option
@click.argument("cases_path", metavar="CASES.yaml", type=click.Path(path_type=Path, dir_okay=False))
def test_command(config_path: Path, cases_path: Path) -> None:
    """Map each case's record and compare with the events it expects.

    Prints a diff for each failing case; exit 1 if any fails, 2 if either file is invalid.
    """
    with load_or_exit(config_path) as loaded:  # only the engine is used: no registry stays open
        engine = loaded.engine
    try:
        document = load_yaml(cases_path, interpolate=False)
    except ConfigError as exc:
        exit_with_problems(exc.problems)
    cases, problems = parse_cases(document)
    if problems:
        exit_with_problems(problems)
    failed = 0
    for index, case in enumerate(cases):
        outcome = run_case(engine, case, document.line_of(("cases", index)))
        if outcome.passed:
            click.echo(f"PASS {outcome.name}")
            continue
        failed += 1
        click.echo(f"FAIL {outcome.name} ({cases_path}:{outcome.line})")
        click.echo(outcome.diff, nl=False)
    click.echo(f"{len(cases) - failed} cases passed, {failed} cases failed")
    if failed:
        raise SystemExit(EXIT_FAILURES)
