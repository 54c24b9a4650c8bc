"""Dead letters and delivery receipts on their way to the broker: each one finishes its
record's unit only when acknowledged.

Used from both threads: the consumer thread writes decode and mapping failures,
the delivery loop writes rejected and expired events; acknowledgements arrive on
the consumer thread, which serves the producer. A letter the broker refused is
never dropped: its record stays unfinished (so its offset is not committed), it
is sent again after a pause, and readiness reports the failure meanwhile.

A letter larger than the dead-letter topic takes is cut to fit
(``dead_letters.fit_letter``) before it is sent, so a large record never makes
the producer refuse it (docs/running.md, "Size bounds").

With ``receipts:`` in the file, an event Vibes accepted finishes its unit when
its receipt is acknowledged (docs/receipts.md), exactly as a dead letter does:
the same producer, the same retries, so the receipt stream is complete.

A paused company's parked event (docs/isolation.md, "Parking") finishes its unit
the same way, when the parked topic acknowledges it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bridge.dead_letters import VALUE_TRUNCATED_HEADER, DeadLetter, fit_letter
from bridge.kafka.producer import DeadLetterProducer
from bridge.kafka.sizes import LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES, record_budget
from bridge.mapping.engine import MappedEvent
from bridge.metrics import BridgeMetrics
from bridge.parking import parked_record
from bridge.receipts import Receipt, fitted_record
from bridge.service.health import Health
from bridge.service.offsets import Finisher, Ticket

log = logging.getLogger(__name__)


class DeadLetterOutbox:
    """Writes dead letters (and receipts) and finishes their records' work on acknowledgement."""

    def __init__(
        self,
        producer: DeadLetterProducer,
        tracker: Finisher,
        metrics: BridgeMetrics,
        health: Health,
        *,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_record_bytes: int = LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES,
        receipts_topic: str | None = None,
        parking_topic: str | None = None,
    ) -> None:
        self._producer = producer
        self._tracker = tracker
        self._metrics = metrics
        self._health = health
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        # Sent again after a pause: (when, what to send, its ticket).
        self._retry: list[tuple[float, Callable[[], None], Ticket]] = []
        self._budget = record_budget(max_record_bytes)
        self._unfit_reported = False
        self.receipts_topic = receipts_topic
        self.parking_topic = parking_topic

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
        self._later(lambda: self.write(letter, ticket), ticket)

    def _later(self, resend: Callable[[], None], ticket: Ticket) -> None:
        with self._lock:
            self._retry.append((self._clock() + self._retry_seconds, resend, ticket))

    def write_receipt(self, receipt: Receipt, ticket: Ticket) -> None:
        """Send the receipt of an accepted event; its acknowledgement finishes one unit of
        ``ticket`` (any thread; never blocks, never raises). Needs ``receipts_topic``."""
        assert self.receipts_topic is not None, "receipts are off"
        record = fitted_record(receipt, self._budget)
        if record is None:  # the start-up check makes this unreachable; keep the record waiting
            self._health.receipts_failing = True
            self._later(lambda: self.write_receipt(receipt, ticket), ticket)
            return

        def acknowledged(error: str | None) -> None:
            if error is None:
                self._metrics.pipeline.receipt_written()
                self._health.receipts_failing = False
                self._tracker.finish(ticket)
                return
            self._health.receipts_failing = True
            log.error(
                "receipt not written; it will be sent again",
                extra={"kafka_error": error, "topic": self.receipts_topic},
            )
            self._later(lambda: self.write_receipt(receipt, ticket), ticket)

        key, value, headers = record
        self._producer.send(key, value, headers, acknowledged, self.receipts_topic)

    def park(self, event: MappedEvent, ticket: Ticket) -> bool:
        """Send ``event`` to the parked topic; its acknowledgement finishes one unit of
        ``ticket`` (any thread; never blocks, never raises). False, and nothing sent, when
        the event does not fit the topic: it then waits for its company as before."""
        assert self.parking_topic is not None, "parking is off"
        record = parked_record(event, self._budget)
        if record is None:
            return False
        self._send_parked(record, event.company_key, ticket)
        return True

    def _send_parked(
        self,
        record: tuple[bytes | None, bytes, list[tuple[str, bytes | None]]],
        company_key: str,
        ticket: Ticket,
    ) -> None:
        def acknowledged(error: str | None) -> None:
            if error is None:
                self._metrics.pipeline.parked(company_key)
                self._tracker.finish(ticket)
                return
            log.error(
                "parked event not written; it will be sent again",
                extra={"kafka_error": error, "topic": self.parking_topic},
            )
            self._later(lambda: self._send_parked(record, company_key, ticket), ticket)

        key, value, headers = record
        self._producer.send(key, value, headers, acknowledged, self.parking_topic)

    def parking_topic_exists(self) -> bool:
        """Whether the parked topic exists (False when parking is off)."""
        if self.parking_topic is None:
            return False
        return self._producer.topic_exists(topic=self.parking_topic)

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
            self._later(lambda: self.write(letter, ticket), ticket)

        self._producer.send(letter.key, letter.value, letter.headers, acknowledged)

    def serve(self, timeout: float = 0.0) -> None:
        """Deliver acknowledgements and send again what is due (the consumer thread calls it)."""
        self._producer.poll(timeout)
        now = self._clock()
        with self._lock:
            due = [entry for entry in self._retry if entry[0] <= now]
            self._retry = [entry for entry in self._retry if entry[0] > now]
        for _when, resend, ticket in due:
            if self._tracker.is_current(ticket):  # a revoked partition's owner redoes it
                resend()

    def flush(self, timeout: float) -> int:
        """Wait for outstanding acknowledgements; how many are still missing."""
        return self._producer.flush(timeout)

    def topic_exists(self) -> bool:
        return self._producer.topic_exists()

    def receipts_topic_exists(self) -> bool:
        """True when receipts are off, or their topic exists."""
        if self.receipts_topic is None:
            return True
        return self._producer.topic_exists(topic=self.receipts_topic)
