"""Structured JSON log lines on stdout (python-json-logger), one object per line.

The service logs through the standard library everywhere; this is the one place
that decides the format. Fields passed with ``extra=`` become keys of the line.
Never pass record values, recipients or credentials: the call sites only pass
coordinates, counts, codes and names.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter


def configure_json_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Route every logger to ``stream`` (stdout) as JSON lines at ``level``.

    ``replay`` passes stderr: its stdout is the report, or the bodies of a dry run.
    """
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # librdkafka's own log lines arrive through the client's logger at its levels;
    # aiohttp's access log is off (the management routes are scraped every few seconds).
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # httpx logs every request at INFO: one line per event would break "per-record
    # logs at debug only" and cost about 7 % of the bridge's CPU under load
    # (bench/end_to_end.py --profile). At debug level they stay visible.
    httpx_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger("httpx").setLevel(httpx_level)
