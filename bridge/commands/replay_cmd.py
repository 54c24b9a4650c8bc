"""``vibes-bridge replay``: re-process dead letters once the cause is fixed (options only).

The work is in ``bridge.service.replay`` (Kafka and delivery) and ``bridge.replay``
(the pure filters and report). Exit 0 when everything selected was delivered or
skipped, 1 when some records failed again (or the replay was interrupted), 2 on
bad usage or configuration. The callback receiver's ``invalid_callback`` letters
are counted apart and never fail a replay.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from bridge.commands.common import (
    EXIT_CONFIG,
    EXIT_FAILURES,
    EXIT_OK,
    config_option,
    load_or_exit,
    time_option,
)
from bridge.errors import DeadLetterReason


@click.command("replay", short_help="Re-deliver dead letters once the cause is fixed.")
@config_option
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    type=click.Choice([reason.value for reason in DeadLetterReason]),
    help="Only letters with this bridge.error.reason (repeatable). The receiver's "
    "invalid_callback letters are counted and listed by position, never sent.",
)
@click.option("--rule", default=None, help="Only letters of this rule (bridge.rule).")
@click.option("--source-topic", default=None, help="Only letters from this source topic.")
@click.option(
    "--since",
    callback=time_option,
    help="Only letters written at or after this time: ISO 8601 (UTC unless given) or 2h ago, "
    "between 1970-01-01 and 9999-12-31.",
)
@click.option(
    "--until", callback=time_option, help="Only letters written before this time (same forms)."
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most N letters replayed (invalid callbacks do not count).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the bodies that would be sent (as `map` does); send and commit nothing.",
)
@click.option(
    "--requeue",
    is_flag=True,
    help="Append records that fail again to the dead-letter topic (default: report only).",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="Ignore the replay group's progress and start from the topic's first letter.",
)
@click.option(
    "--group",
    "group_id",
    default=None,
    help="The replay's consumer group [default: <kafka.group_id>.replay, then a hash of "
    "the filters if any].",
)
@click.option(
    "--log-level",
    type=click.Choice(("debug", "info", "warning", "error")),
    default="warning",
    show_default=True,
    help="JSON log lines on stderr at this level.",
)
def replay_command(
    config_path: Path,
    reasons: tuple[str, ...],
    rule: str | None,
    source_topic: str | None,
    since: int | None,
    until: int | None,
    limit: int | None,
    dry_run: bool,
    requeue: bool,
    from_beginning: bool,
    group_id: str | None,
    log_level: str,
) -> None:
    """Read the dead-letter topic of the configuration up to its current end, map each
    selected record again with the current rules as the source record it was (same
    topic, partition, offset, key and headers, so the same default event ids), and
    deliver the events the way `run` does. Progress is committed under the replay's
    own consumer group (printed), so an interrupted replay resumes and a finished one
    does not repeat. Records that fail again are reported, not re-appended unless
    --requeue."""
    if dry_run and requeue:
        raise click.UsageError("--dry-run sends nothing, so it cannot --requeue")
    from bridge.kafka.reader import TopicUnavailable
    from bridge.replay import Selection
    from bridge.service.logs import configure_json_logging
    from bridge.service.replay import RegistryOutage, ReplayOptions, replay_dead_letters

    try:
        selection = Selection(frozenset(reasons), rule, source_topic, since, until)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    configure_json_logging(log_level, stream=sys.stderr)
    loaded = load_or_exit(config_path)
    options = ReplayOptions(selection, limit, dry_run, requeue, from_beginning, group_id)
    # Bodies go to stdout in a dry run, so the report goes to stderr there.
    echo_err = dry_run

    def write(line: bytes) -> None:
        sys.stdout.buffer.write(line)

    try:
        report = asyncio.run(replay_dead_letters(loaded, options, write))
    except TopicUnavailable as exc:
        click.echo(f"dead-letter topic {loaded.settings.dead_letter.topic}: {exc}", err=True)
        raise SystemExit(EXIT_CONFIG) from None
    except RegistryOutage as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(EXIT_FAILURES) from None
    finally:
        sys.stdout.flush()
        loaded.close()
    for line in report.lines():
        click.echo(line, err=echo_err)
    raise SystemExit(EXIT_FAILURES if report.exit_failed else EXIT_OK)
