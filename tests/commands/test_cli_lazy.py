"""Commands load lazily: the simulator's web server stays out of the other commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from bridge.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[2]

# Runs a command in-process as the console script would (without exiting), then
# prints the bridge and third-party modules it imported.
PROBE = """
import sys
from bridge.cli import cli
try:
    cli(sys.argv[1:], prog_name="vibes-bridge")
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


def imported_by(*args: str) -> set[str]:
    """Every module name in ``sys.modules`` after ``vibes-bridge ARGS`` ran in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("MODULES "))
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "--help"],
        ["map", "--help"],
        ["test", "--help"],
        ["--help"],
        ["validate", "-c", "examples/bridge.yaml"],
    ],
    ids=["validate-help", "map-help", "test-help", "group-help", "validate-example"],
)
def test_commands_other_than_sim_never_import_the_web_server(args: list[str]) -> None:
    modules = imported_by(*args)
    assert "bridge.cli" in modules  # the probe did run the command line
    assert "aiohttp" not in modules
    assert not any(name.startswith("bridge.sim") for name in modules)


def test_group_help_imports_no_command() -> None:
    modules = imported_by("--help")
    assert not any(name.startswith("bridge.commands.") for name in modules)


def test_sim_help_does_import_the_simulator() -> None:
    """The probe can see the web server when a command does load it."""
    modules = imported_by("sim", "--help")
    assert "aiohttp" in modules
    assert "bridge.sim.app" in modules


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_kept_short_help_is_the_commands_own(name: str) -> None:
    command = COMMANDS[name].load()
    assert command.name == name
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=200)


def test_group_lists_every_command() -> None:
    with click.Context(cli) as ctx:
        assert cli.list_commands(ctx) == sorted(COMMANDS)
        assert all(cli.get_command(ctx, name) is not None for name in COMMANDS)
        assert cli.get_command(ctx, "no-such-command") is None


def test_a_file_without_json_schemas_never_imports_the_validator() -> None:
    """jsonschema costs about 8 MB and 0.1 s at start; only ``confluent-json`` needs it."""
    modules = imported_by("validate", "-c", "examples/bridge.yaml")
    assert "bridge.codecs.confluent_json" in modules  # the codecs were loaded
    assert "jsonschema" not in modules
    assert "referencing" not in modules


def test_a_file_without_protobuf_sources_never_imports_the_protobuf_runtime() -> None:
    """The protobuf runtime costs about 4 MB at every start; only the Protobuf formats need it."""
    modules = imported_by("validate", "-c", "examples/bridge.yaml")
    assert "bridge.codecs.factory" in modules  # the decoders were built
    assert "bridge.codecs.protobuf_codec" not in modules
    assert not any(name.startswith("google.protobuf") for name in modules)
