"""The ``vibes-bridge`` command line: one click group, one module per command.

Exit status everywhere: 0 success, 1 the work found failures, 2 bad usage or
configuration (click itself uses 2 for usage errors, which fits).

Commands load lazily: a command's module is imported only when that command
runs or shows its help, so ``validate`` and ``map`` never pay for the
simulator's web server (about half a second measured: docs/performance.md).
The group's own ``--help`` lists every command from the short help kept here,
which a test holds equal to each command's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import click

from bridge import __version__


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """Where a command lives, and the line the group's help shows for it."""

    module: str
    attribute: str
    short_help: str

    def load(self) -> click.Command:
        """Import the command's module and return the command."""
        command = getattr(importlib.import_module(self.module), self.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.module}.{self.attribute} is not a click command")
        return command


COMMANDS: Final[Mapping[str, LazyCommand]] = {
    "run": LazyCommand(
        "bridge.commands.run_cmd",
        "run_command",
        "Consume, map, deliver to Vibes, commit, dead-letter.",
    ),
    "explain": LazyCommand(
        "bridge.commands.explain_cmd",
        "explain_command",
        "Tell one event's story: accepted, dead-lettered, callbacks.",
    ),
    "validate": LazyCommand(
        "bridge.commands.validate_cmd",
        "validate_command",
        "Check a configuration file; every problem with its line.",
    ),
    "map": LazyCommand(
        "bridge.commands.map_cmd",
        "map_command",
        "Dry run: the Vibes body of each JSON Lines record.",
    ),
    "test": LazyCommand(
        "bridge.commands.test_cmd",
        "test_command",
        "Run mapping unit tests (YAML cases).",
    ),
    "callbacks": LazyCommand(
        "bridge.commands.callbacks_cmd",
        "callbacks_command",
        "Register, list and delete Vibes event-processed callbacks.",
    ),
    "replay": LazyCommand(
        "bridge.commands.replay_cmd",
        "replay_command",
        "Re-deliver dead letters once the cause is fixed.",
    ),
    "sim": LazyCommand(
        "bridge.commands.sim_cmd",
        "sim_command",
        "Run a local Vibes Event API simulator (loopback by default).",
    ),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (click's documented pattern)."""

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, LazyCommand] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: Mapping[str, LazyCommand] = lazy_commands or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = self.lazy_commands.get(cmd_name)
        if lazy is None:
            return super().get_command(ctx, cmd_name)
        return lazy.load()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, importing no lazy command: their short help is kept here."""
        rows = []
        for name in self.list_commands(ctx):
            lazy = self.lazy_commands.get(name)
            if lazy is not None:
                rows.append((name, lazy.short_help))
            elif (command := super().get_command(ctx, name)) is not None:
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="vibes-bridge")
def cli() -> None:
    """Kafka order and shipment events to the Vibes Event API."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="vibes-bridge")
