"""The ``vibes-bridge`` command line: one click group, one module per command.

Exit status everywhere: 0 success, 1 the work found failures, 2 bad usage or
configuration (click itself uses 2 for usage errors, which fits).
"""

from __future__ import annotations

import click

from bridge import __version__
from bridge.commands.map_cmd import map_command
from bridge.commands.run_cmd import run_command
from bridge.commands.sim_cmd import sim_command
from bridge.commands.test_cmd import test_command
from bridge.commands.validate_cmd import validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vibes-bridge")
def cli() -> None:
    """Kafka order and shipment events to the Vibes Event API."""


cli.add_command(run_command)
cli.add_command(validate_command)
cli.add_command(map_command)
cli.add_command(test_command)
cli.add_command(sim_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vibes-bridge")
