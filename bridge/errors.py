"""One exception tree for the whole bridge.

Every leaf maps to exactly one outcome for a record, so the consumer loop can
decide by type instead of by message::

    BridgeError
    ├── ConfigError              the configuration file is wrong: refuse to start (exit 2)
    ├── RecordError              this record can never succeed: dead-letter it
    │   ├── DecodeError          bytes that are not a valid value   (reason decode_error)
    │   ├── MappingError         a value the rules cannot map       (reason mapping_error)
    │   ├── EventRejected        Vibes refused the event with a 4xx (reason rejected)
    │   └── EventExpired         too old to send, or retried too long (reason expired)
    ├── TransientError           the world is briefly unavailable: retry, never dead-letter
    │   ├── SchemaRegistryUnavailable
    │   └── DeliveryUnavailable  429, 5xx, timeout, connection: retry with backoff
    └── CredentialsRejected      401/403: every event would fail; pause, report not ready

Messages must never carry secrets or person data (names, phone numbers, ids):
they end up in logs and in dead-letter headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class DeadLetterReason(StrEnum):
    """``bridge.error.reason`` of a dead letter (spec section 3)."""

    DECODE_ERROR = "decode_error"
    MAPPING_ERROR = "mapping_error"
    REJECTED = "rejected"
    EXPIRED = "expired"


class RetryReason(StrEnum):
    """Why a delivery attempt is retried: the ``reason`` label of ``delivery_retries_total``."""

    STATUS_429 = "status_429"
    STATUS_5XX = "status_5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a configuration or mapping-test file, with where it is."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class ConfigError(BridgeError):
    """The configuration is wrong; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RecordError(BridgeError):
    """A record that can never succeed, whatever is retried.

    ``reason`` is the dead-letter reason (``bridge.error.reason``); ``code`` is a
    finer, stable machine-readable cause (``no_recipient``, ``truncated`` ...).
    """

    reason: ClassVar[DeadLetterReason]
    # Delivery attempts made before this outcome (the dead letter's ``bridge.attempts``);
    # 0 for records that never reached delivery. The deliverer sets it when it raises.
    attempts: int = 0

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class DecodeError(RecordError):
    """The record's bytes are not a value of the source's format."""

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.DECODE_ERROR


class MappingError(RecordError):
    """The decoded value cannot be turned into a valid Vibes event by a rule."""

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.MAPPING_ERROR


class EventRejected(RecordError):
    """Vibes answered a non-retryable 4xx (not 401, 403, 409 or 429) for this event.

    ``response`` holds Vibes' error messages joined on one line, already cut to
    the 1 KiB the dead-letter header allows; it is Vibes' text about our body,
    which the client has stripped of anything but the messages.
    """

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.REJECTED

    def __init__(self, status: int, response: str) -> None:
        self.status = status
        self.response = response
        super().__init__(f"http_{status}", f"Vibes refused the event with HTTP {status}")


class EventExpired(RecordError):
    """The event is too old to send (``max_event_age``) or was retried too long
    (``max_retry_duration``); ``code`` says which."""

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.EXPIRED


class TransientError(BridgeError):
    """Something outside the record failed for now; the record must be retried."""


class SchemaRegistryUnavailable(TransientError):
    """The Schema Registry could not be reached or answered 5xx."""


class DeliveryUnavailable(TransientError):
    """One delivery attempt failed for a reason that may pass: retry it later.

    ``retry_after`` is Vibes' ``Retry-After`` in seconds when it sent one;
    ``status`` is the HTTP status when there was an answer at all.
    """

    def __init__(
        self, reason: RetryReason, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        detail = f"HTTP {status}" if status is not None else reason.value
        super().__init__(f"Vibes unavailable ({detail})")


class CredentialsRejected(BridgeError):
    """Vibes answered 401 or 403: the credentials are wrong for every event, not this one.

    Never a dead letter: delivery pauses, the bridge reports not ready, and it
    retries slowly until the credentials work again.
    """

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"Vibes rejected the credentials (HTTP {status})")
