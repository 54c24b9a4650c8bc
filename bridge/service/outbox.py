"""Dead letters on their way to the broker: each one finishes its record only when acknowledged.

Used from both threads: the consumer thread writes decode and mapping failures,
the delivery loop writes rejected and expired events; acknowledgements arrive on
the consumer thread, which serves the producer. A letter the broker refused is
never dropped: its record stays unfinished (so its offset is not committed), it
is sent again after a pause, and readiness reports the failure meanwhile.

A letter larger than the dead-letter topic takes is cut to fit
(``dead_letters.fit_letter``) before it is sent, so a large record never makes
the producer refuse it (docs/running.md, "Size bounds").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.dead_letters import VALUE_TRUNCATED_HEADER, DeadLetter, fit_letter
from bridge.kafka.producer import DeadLetterProducer
from bridge.kafka.sizes import LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES, record_budget
from bridge.metrics import BridgeMetrics
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket

log = logging.getLogger(__name__)


class DeadLetterOutbox:
    """Writes dead letters and finishes their records' work on acknowledgement."""

    def __init__(
        self,
        producer: DeadLetterProducer,
        tracker: OffsetTracker,
        metrics: BridgeMetrics,
        health: Health,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_record_bytes: int = LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES,
    ) -> None:
        self._producer = producer
        self._tracker = tracker
        self._metrics = metrics
        self._health = health
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._retry: list[tuple[float, DeadLetter, Ticket]] = []
        self._budget = record_budget(max_record_bytes)
        self._unfit_reported = False

    def write(self, letter: DeadLetter, ticket: Ticket) -> None:
        """Send ``letter``, cut to fit the topic; its acknowledgement finishes one unit
        of ``ticket`` (any thread; never blocks, never raises)."""
        fitted = fit_letter(letter, self._budget)
        if fitted is None:
            self._unfit(letter, ticket)
            return
        if fitted is not letter:
            log.warning(
                "dead letter cut to fit the dead-letter topic",
                extra={
                    "reason": letter.reason,
                    "value_bytes": len(letter.value or b""),
                    "value_truncated": any(
                        name == VALUE_TRUNCATED_HEADER for name, _ in fitted.headers
                    ),
                    "budget_bytes": self._budget,
                },
            )
        self._send(fitted, ticket)

    def _unfit(self, letter: DeadLetter, ticket: Ticket) -> None:
        """Not even the bridge's own headers fit: the start-up check makes this unreachable
        unless the topic's limit was lowered since; keep the record unfinished, say so once."""
        self._health.dead_letters_failing = True
        if not self._unfit_reported:
            self._unfit_reported = True
            log.error(
                "dead letters do not fit the dead-letter topic's max.message.bytes; "
                "records that need one wait (raise the limit and restart)",
                extra={"topic": self._producer.topic, "budget_bytes": self._budget},
            )
        with self._lock:
            self._retry.append((self._clock() + self._retry_seconds, letter, ticket))

    def _send(self, letter: DeadLetter, ticket: Ticket) -> None:
        def acknowledged(error: str | None) -> None:
            if error is None:
                self._metrics.pipeline.dead_lettered(letter.reason)
                self._health.dead_letters_failing = False
                self._health.dead_letter_topic_missing = False
                self._tracker.finish(ticket)
                return
            self._health.dead_letters_failing = True
            log.error(
                "dead letter not written; it will be sent again",
                extra={"kafka_error": error, "topic": self._producer.topic},
            )
            with self._lock:
                self._retry.append((self._clock() + self._retry_seconds, letter, ticket))

        self._producer.send(letter.key, letter.value, letter.headers, acknowledged)

    def serve(self, timeout: float = 0.0) -> None:
        """Deliver acknowledgements and send again what is due (the consumer thread calls it)."""
        self._producer.poll(timeout)
        now = self._clock()
        with self._lock:
            due = [entry for entry in self._retry if entry[0] <= now]
            self._retry = [entry for entry in self._retry if entry[0] > now]
        for _when, letter, ticket in due:
            if self._tracker.is_current(ticket):  # a revoked partition's owner redoes it
                self.write(letter, ticket)

    def flush(self, timeout: float) -> int:
        """Wait for outstanding acknowledgements; how many are still missing."""
        return self._producer.flush(timeout)

    def topic_exists(self) -> bool:
        return self._producer.topic_exists()
