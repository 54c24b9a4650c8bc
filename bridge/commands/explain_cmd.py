"""``vibes-bridge explain``: one event's story from the receipts, dead-letter and callbacks topics.

Options only, and the order the topics are read in: the source topic first when
asked by topic and key (the records with that key), then receipts and dead letters,
then callbacks (``bridge.explain`` says why the order matters and builds the story;
``bridge.kafka.reader.read_window`` reads a topic over the window). Exit 0 when
something about the event was found, 1 when it was never seen in the window, 2 on
bad usage or configuration, or when a topic could not be read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from bridge.commands.common import (
    EXIT_CONFIG,
    EXIT_FAILURES,
    EXIT_OK,
    config_option,
    load_or_exit,
    time_option,
)

if TYPE_CHECKING:
    from bridge.kafka.config import ConfigValue
    from bridge.records import SourceRecord

    Take = Callable[[SourceRecord], None]

_DEFAULT_SINCE = "24h"


@click.command("explain", short_help="Tell one event's story: accepted, dead-lettered, callbacks.")
@config_option
@click.option("--event-id", default=None, help="The event's event_id.")
@click.option("--topic", default=None, help="A source topic (with --key).")
@click.option("--key", default=None, help="A source record's key on --topic (an order id).")
@click.option(
    "--since",
    callback=time_option,
    default=_DEFAULT_SINCE,
    show_default=True,
    help="The window's start: ISO 8601 (UTC unless given) or a duration ago (2h).",
)
@click.option(
    "--until", callback=time_option, default=None, help="The window's end [default: now]."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option(
    "--show-person-data",
    is_flag=True,
    help="Also show callbacks' event_data, Vibes' error answers and event ids built "
    "from records (hidden by default).",
)
@click.option(
    "--max-records",
    type=click.IntRange(min=1),
    default=1_000_000,
    show_default=True,
    help="At most this many records read per topic.",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0.1),
    default=120.0,
    show_default=True,
    help="At most this many seconds reading each topic.",
)
def explain_command(
    config_path: Path,
    event_id: str | None,
    topic: str | None,
    key: str | None,
    since: int,
    until: int | None,
    as_json: bool,
    show_person_data: bool,
    max_records: int,
    timeout_seconds: float,
) -> None:
    """Print what happened to one event, in order, from the bridge's topics.

    Ask by --event-id, or by --topic and --key (every record with that key in the
    window). Only records timestamped in the window are read: a callback that came
    after --until is not seen.
    """
    from bridge.errors import KafkaFailure
    from bridge.explain import Collector, Query, build_story, render_text
    from bridge.kafka.config import consumer_config

    if (event_id is None) == (topic is None or key is None) or (topic is None) != (key is None):
        raise click.UsageError("give --event-id, or --topic with --key")
    until_ms = until if until is not None else int(datetime.now(UTC).timestamp() * 1000)
    if since >= until_ms:
        raise click.UsageError("--since must be earlier than --until")
    with load_or_exit(config_path) as loaded:
        settings = loaded.settings
        if topic is not None and topic not in loaded.decoders:
            raise click.UsageError(f"--topic {topic} is not a source of the configuration")
        query = Query(
            since, until_ms, event_id, topic, None if key is None else key.encode("utf-8")
        )
        collected = Collector(query)
        topics: dict[str, tuple[str, Take]] = {}
        if topic is not None:
            topics["source"] = (topic, collected.take_source)
        if settings.receipts is not None:
            topics["receipts"] = (settings.receipts.topic, collected.take_receipt)
        topics["dead_letters"] = (settings.dead_letter.topic, collected.take_letter)
        if settings.callbacks is not None:
            topics["callbacks"] = (settings.callbacks.topic, collected.take_callback)
        reader_settings = consumer_config(settings.kafka).settings
        complete = True
        for name, take in topics.values():
            try:
                read = _read(
                    reader_settings, name, (since, until_ms), take, max_records, timeout_seconds
                )
            except KafkaFailure as exc:
                click.echo(f"explain: cannot read {name}: {exc}", err=True)
                raise SystemExit(EXIT_CONFIG) from None
            complete = complete and read
    story = build_story(
        collected,
        topics={role: name for role, (name, _take) in topics.items()},
        complete=complete,
        show_person_data=show_person_data,
    )
    if as_json:
        click.echo(orjson.dumps(story, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in render_text(story):
            click.echo(line)
    raise SystemExit(EXIT_OK if story["found"] else EXIT_FAILURES)


def _read(
    settings: Mapping[str, ConfigValue],
    topic: str,
    window: tuple[int, int],
    take: Take,
    limit: int,
    seconds: float,
) -> bool:
    """Whether ``topic`` was read to the window's end."""
    from bridge.kafka.reader import read_window

    return read_window(
        settings, topic, window, take, max_records=limit, deadline_seconds=seconds
    ).complete
