"""librdkafka's log lines and error callbacks, summarised instead of repeated.

With the broker unreachable, every client (the consumer, the dead-letter and
callback producers, the fleet link, each admin client) logs a failed connect on
every reconnect attempt: about twenty ERROR lines a second, which bury the one
line that matters and cost log storage. Each kind of line (its level, facility
and text with the numbers taken out, so the same failure from another client or
after another backoff is the same kind) passes the first time; then at most one
line per :data:`SUMMARY_INTERVAL_SECONDS`, carrying how many were held back.

Hand-written: the standard library has no rate-limiting filter, and the known
packages that do either drop the count or need a handler of their own.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError

SUMMARY_INTERVAL_SECONDS: Final = 30.0
# Kinds remembered at most; past it, kinds quiet for an interval are forgotten.
MAX_KINDS: Final = 1000
_NUMBERS: Final = re.compile(r"\d+")


@dataclass(slots=True)
class _Seen:
    passed_at: float
    held_back: int = 0


class RepeatSummary(logging.Filter):
    """The first line of each kind, then one per interval with the count held back.

    Lines below WARNING pass untouched: they are only on when someone debugs.
    """

    def __init__(
        self,
        interval: float = SUMMARY_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._seen: dict[tuple[object, ...], _Seen] = {}
        self._lock = threading.Lock()  # librdkafka logs from its own threads

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        held_back = self._held_back(_kind(record))
        if held_back is None:
            return False
        if held_back:
            record.msg = f"{record.getMessage()} ({held_back} more like this held back)"
            record.args = ()
            record.held_back = held_back
        return True

    def _held_back(self, kind: tuple[object, ...]) -> int | None:
        """None to drop the line; else how many of its kind were dropped before it."""
        now = self._clock()
        with self._lock:
            seen = self._seen.get(kind)
            if seen is None:
                self._forget_quiet(now)
                self._seen[kind] = _Seen(now)
                return 0
            if now - seen.passed_at < self._interval:
                seen.held_back += 1
                return None
            held_back, seen.passed_at, seen.held_back = seen.held_back, now, 0
            return held_back

    def _forget_quiet(self, now: float) -> None:
        if len(self._seen) < MAX_KINDS:
            return
        quiet = [k for k, seen in self._seen.items() if now - seen.passed_at >= self._interval]
        for kind in quiet or list(self._seen)[: MAX_KINDS // 2]:
            del self._seen[kind]


def _kind(record: logging.LogRecord) -> tuple[object, ...]:
    args = record.args if isinstance(record.args, tuple) else ()
    return (
        record.levelno,
        str(record.msg),
        *(_NUMBERS.sub("#", str(arg)) for arg in args),
    )


LIBRDKAFKA_LOG: Final = logging.getLogger("bridge.kafka.librdkafka")
"""The logger every Kafka client is given (``logger=``), summarised."""
LIBRDKAFKA_LOG.addFilter(RepeatSummary())


def log_client_error(error: KafkaError) -> None:
    """``error_cb`` for every client: the error, summarised like the log lines.

    Transport errors while the broker is away are expected and retried by
    librdkafka; a fatal one ends the consumer through its own path.
    """
    level = logging.ERROR if error.fatal() else logging.WARNING
    LIBRDKAFKA_LOG.log(level, "kafka client error %s: %s", error.name(), error.str())


def client_logging() -> dict[str, object]:
    """The keyword arguments that route a client's logs and errors here."""
    return {"logger": LIBRDKAFKA_LOG, "error_cb": log_client_error}
