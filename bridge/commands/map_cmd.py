"""``vibes-bridge map``: a dry run of the rules on JSON Lines, with no Kafka and no HTTP.

Streams: one input line is read, mapped and written before the next is read,
so it works in a pipeline on inputs of any size.
"""

from __future__ import annotations

import codecs
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import IO

import click

from bridge.codecs.json_codec import JsonDecoder
from bridge.commands.common import EXIT_CONFIG, EXIT_FAILURES, EXIT_OK, config_option, load_or_exit
from bridge.errors import DecodeError, RecordError
from bridge.mapping.engine import Engine
from bridge.records import MAX_OFFSET, MAX_PARTITION, MAX_TIMESTAMP, SourceRecord


def _parse_header(
    _context: click.Context, _parameter: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, bytes], ...]:
    headers = []
    for item in values:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE")
        headers.append((name, value.encode("utf-8")))
    return tuple(headers)


@click.command("map", short_help="Dry run: the Vibes body of each JSON Lines record.")
@config_option
@click.option("--topic", required=True, help="The source topic the records come from.")
@click.option(
    "-i",
    "--input",
    "input_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="JSON Lines of record values; - is stdin.",
)
@click.option("--key", default=None, help="_kafka.key for every record.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    callback=_parse_header,
    metavar="NAME=VALUE",
    help="A _kafka.headers entry (repeatable).",
)
@click.option(
    "--partition",
    default=0,
    show_default=True,
    type=click.IntRange(min=0, max=MAX_PARTITION),
    help="_kafka.partition for every record.",
)
@click.option(
    "--offset",
    default=0,
    show_default=True,
    type=click.IntRange(min=0, max=MAX_OFFSET),
    help="_kafka.offset of the first record; each further line adds one.",
)
@click.option(
    "--timestamp",
    type=click.IntRange(min=0, max=MAX_TIMESTAMP),
    default=None,
    help="_kafka.timestamp in ms since the epoch [default: now].",
)
def map_command(
    config_path: Path,
    topic: str,
    input_path: Path,
    key: str | None,
    headers: tuple[tuple[str, bytes], ...],
    partition: int,
    offset: int,
    timestamp: int | None,
) -> None:
    """Print the exact JSON body each record would be POSTed as, one per line.

    A record that fails prints one line to stderr (its line number and the
    reason) and makes the exit status 1; the other records are still printed.
    """
    with load_or_exit(config_path) as loaded:  # only the engine is used: no registry stays open
        engine = loaded.engine
    if not engine.rules_for(topic):
        click.echo(f"no rule reads topic {topic!r} in {config_path}", err=True)
        raise SystemExit(EXIT_CONFIG)
    template = SourceRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        value=None,
        key=None if key is None else key.encode("utf-8"),
        timestamp_ms=int(time.time() * 1000) if timestamp is None else timestamp,
        headers=headers,
    )
    try:
        with click.open_file(str(input_path), "rb") as stream:
            failed = _map_stream(engine, stream, template, sys.stdout.buffer)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as Unix filters do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(EXIT_OK) from None
    except _OffsetsExhausted as exc:
        click.echo(
            f"line {exc.line_number}: --offset plus the records read passes the largest "
            f"Kafka offset ({MAX_OFFSET}): give a smaller --offset",
            err=True,
        )
        raise SystemExit(EXIT_CONFIG) from None
    raise SystemExit(EXIT_FAILURES if failed else EXIT_OK)


class _OffsetsExhausted(Exception):
    """The records' offsets would pass int64: a usage error, found only while streaming."""

    def __init__(self, line_number: int) -> None:
        self.line_number = line_number


def _map_stream(engine: Engine, lines: IO[bytes], template: SourceRecord, out: IO[bytes]) -> bool:
    decoder = JsonDecoder()
    failed = False
    record_number = 0
    for line_number, raw in enumerate(lines, start=1):
        # A byte-order mark opens files that Windows tools save as "UTF-8"; the
        # configuration loader ignores it there, and so does map (only there).
        line = raw.removeprefix(codecs.BOM_UTF8) if line_number == 1 else raw
        if not line.strip():
            continue
        offset = template.offset + record_number
        if offset > MAX_OFFSET:
            raise _OffsetsExhausted(line_number)
        record = replace(template, offset=offset)
        record_number += 1
        try:
            value = decoder.decode(line)
        except DecodeError as exc:
            _report(line_number, exc)
            failed = True
            continue
        result = engine.map(value, record)
        for event in result.events:
            out.write(event.body + b"\n")
        for failure in result.failures:
            _report(line_number, failure.error)
            failed = True
    out.flush()
    return failed


def _report(line_number: int, error: RecordError) -> None:
    click.echo(f"line {line_number}: {error.reason}: {error.code}: {error.message}", err=True)
