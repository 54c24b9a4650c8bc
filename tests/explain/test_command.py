"""``vibes-bridge explain``'s usage errors: exit 2 before any topic is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.commands.explain_cmd import explain_command
from tests.support.configs import WriteConfig

RULES = """\
rules:
  - name: r
    topic: shop.orders
    event_type: t
    recipient: {external_person_id: id}
"""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        ([], "give --event-id, or --topic with --key"),
        (["--topic", "shop.orders"], "give --event-id, or --topic with --key"),
        (["--event-id", "e", "--topic", "shop.orders", "--key", "k"], "give --event-id"),
        (["--event-id", "e", "--since", "1h", "--until", "2h"], "--since must be earlier"),
        (["--event-id", "e", "--since", "yesterday"], "invalid time"),
        (["--topic", "elsewhere", "--key", "k"], "is not a source of the configuration"),
    ],
)
def test_bad_usage_exits_2_and_says_why(
    write_config: WriteConfig, args: list[str], said: str
) -> None:
    config: Path = write_config(RULES)
    result = CliRunner().invoke(explain_command, ["-c", str(config), *args])
    assert result.exit_code == 2, result.output
    assert said in result.output
