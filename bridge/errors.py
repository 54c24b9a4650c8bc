"""One exception tree for the whole bridge.

Every leaf maps to exactly one outcome for a record, so the consumer loop can
decide by type instead of by message::

    BridgeError
    ├── ConfigError              the configuration file is wrong: refuse to start (exit 2)
    ├── RecordError              this record can never succeed: dead-letter it
    │   ├── DecodeError          bytes that are not a valid value   (reason decode_error)
    │   ├── MappingError         a value the rules cannot map       (reason mapping_error)
    │   ├── EventRejected        Vibes refused the event with a 4xx (reason rejected)
    │   ├── EventExpired         too old to send, or retried too long (reason expired)
    │   └── DeliveryFailed       delivery ended in an unclassified exception (reason delivery_error)
    ├── TransientError           the world is briefly unavailable: retry, never dead-letter
    │   ├── SchemaRegistryUnavailable
    │   └── DeliveryUnavailable  429, 5xx, timeout, connection: retry with backoff
    └── CredentialsRejected      401/403: every event would fail; pause, report not ready

Messages must never carry secrets or person data (names, phone numbers, ids):
they end up in logs and in dead-letter headers.

The finer cause of a decode or mapping error is a member of :class:`DecodeCode` or
:class:`MappingCode`: the one list of codes, which the docs' tables must match
(``tests/test_error_codes.py`` compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


class DeadLetterReason(StrEnum):
    """``bridge.error.reason`` of a dead letter (spec section 3).

    The first four are source records that failed; ``invalid_callback`` is the
    callback receiver's: a body Vibes posted that is not a callback. It was never
    a source record, so replay counts and lists it but never sends it.
    """

    DECODE_ERROR = "decode_error"
    MAPPING_ERROR = "mapping_error"
    REJECTED = "rejected"
    EXPIRED = "expired"
    INVALID_CALLBACK = "invalid_callback"
    DELIVERY_ERROR = "delivery_error"


class RetryReason(StrEnum):
    """Why a delivery attempt is retried: the ``reason`` label of ``delivery_retries_total``."""

    STATUS_429 = "status_429"
    STATUS_5XX = "status_5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"


class DecodeCode(StrEnum):
    """Why a record's bytes are not a value of its source's format (docs/codecs.md)."""

    NULL_VALUE = "null_value"
    NOT_AN_OBJECT = "not_an_object"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    TOO_DEEP = "too_deep"
    TRUNCATED = "truncated"
    TRAILING_BYTES = "trailing_bytes"
    INVALID_AVRO = "invalid_avro"
    VALUE_OUT_OF_RANGE = "value_out_of_range"
    SCHEMA_MISMATCH = "schema_mismatch"
    BAD_MAGIC_BYTE = "bad_magic_byte"
    UNKNOWN_SCHEMA_ID = "unknown_schema_id"
    UNKNOWN_SCHEMA_REFERENCE = "unknown_schema_reference"
    UNSUPPORTED_SCHEMA_TYPE = "unsupported_schema_type"
    INVALID_REGISTRY_SCHEMA = "invalid_registry_schema"
    INVALID_PROTOBUF = "invalid_protobuf"
    BAD_MESSAGE_INDEX = "bad_message_index"
    SCHEMA_VIOLATION = "schema_violation"
    UNDECODABLE = "undecodable"
    NO_SOURCE = "no_source"


class MappingCode(StrEnum):
    """Why a rule cannot turn a decoded value into a valid event (docs/configuration.md)."""

    NO_RECIPIENT = "no_recipient"
    INVALID_RECIPIENT = "invalid_recipient"
    REQUIRED_VALUE_MISSING = "required_value_missing"
    CONVERSION_FAILED = "conversion_failed"
    INVALID_PHONE_NUMBER = "invalid_phone_number"
    INVALID_EVENT_TYPE = "invalid_event_type"
    EXPRESSION_ERROR = "expression_error"
    UNENCODABLE = "unencodable"


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
    """The configuration is wrong; carries every problem found, not just the first.

    ``warnings`` are the file's warnings (a literal password ...), kept so that a
    file with errors still shows them.
    """

    def __init__(self, problems: list[Problem], warnings: tuple[Problem, ...] = ()) -> None:
        self.problems = problems
        self.warnings = warnings
        super().__init__("\n".join(str(p) for p in problems))


class RecordError(BridgeError):
    """A record that can never succeed, whatever is retried.

    ``reason`` is the dead-letter reason (``bridge.error.reason``); ``code`` is a
    finer, stable machine-readable cause (``no_recipient``, ``truncated`` ...): a
    :class:`DecodeCode` or :class:`MappingCode` for the leaves that have a closed
    list, plain text for the delivery leaves (``http_404``).
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
    code: DecodeCode

    def __init__(self, code: DecodeCode, message: str) -> None:
        super().__init__(code, message)


class MappingError(RecordError):
    """The decoded value cannot be turned into a valid Vibes event by a rule.

    The message names the rule and the field (``rule order-shipped: recipient.mdn:
    not a valid phone number (region US)``), never the record's values.
    """

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.MAPPING_ERROR
    code: MappingCode

    def __init__(self, code: MappingCode, message: str) -> None:
        super().__init__(code, message)


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


class DeliveryFailed(RecordError):
    """Delivering the event ended in an exception the deliverer did not classify: a bug.

    Dead-lettered rather than retried: the deliverer already retries every failure
    it knows to be transient, so the same code on the same event most likely fails
    the same way, and retrying would hold the key's lane and the partition's
    commits for ever. The letter keeps the record for ``replay`` once fixed.
    ``code`` is the exception's class name; its message is never kept (it may
    hold the event's values).
    """

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.DELIVERY_ERROR

    def __init__(self, exception_type: str) -> None:
        super().__init__(
            exception_type[:64], f"delivery ended in an unexpected {exception_type[:64]}"
        )


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
