"""``vibes-bridge validate``: check a configuration file before it reaches production."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.commands.common import EXIT_CONFIG, config_option
from bridge.errors import ConfigError
from bridge.loading import load_bridge


@click.command("validate", short_help="Check a configuration file; every problem with its line.")
@config_option
def validate_command(config_path: Path) -> None:
    """Load and check the file: print every problem as FILE:LINE: message.

    Exit 0 when the file is valid (warnings may still be printed), 2 otherwise.
    Nothing is contacted: no Kafka, no Vibes, no Schema Registry.
    """
    try:
        loaded = load_bridge(config_path)
    except ConfigError as exc:
        # Warnings too: a literal password still deserves one when the file has errors.
        for problem in sorted((*exc.warnings, *exc.problems), key=lambda p: p.line or 0):
            click.echo(str(problem))
        click.echo(f"{len(exc.problems)} problem(s) found", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    with loaded:
        for warning in loaded.warnings:
            click.echo(str(warning))
        counts = f"{len(loaded.settings.sources)} sources, {len(loaded.settings.rules)} rules"
        click.echo(f"{config_path}: OK ({counts})")
