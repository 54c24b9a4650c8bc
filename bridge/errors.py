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
    │   └── SchemaRegistryUnavailable
    ├── KafkaFailure             Kafka did not do what was asked (raised by bridge/kafka only)
    │   ├── KafkaCallFailed      a librdkafka call raised; its error name, never its exception
    │   ├── TopicUnavailable     replay's topic is missing or the broker silent (kafka/reader.py)
    │   ├── BudgetTopicUnavailable  the fleet budget's topic is unusable (kafka/budget_topic.py)
    │   ├── ProduceFailed        the broker did not take a record (kafka/producer.py)
    │   └── MalformedMessage     a fetched message without coordinates (kafka/messages.py)
    └── the other edges' own errors, defined where they are raised:
        CallbackApiError (delivery/callback_api.py), InvalidCallback (vibes/callbacks.py),
        NotADeadLetter (dead_letters.py), MalformedEntry (fleet/wire.py),
        SchemaFileError (codecs/avro_schema.py); RegistryOutage (service/replay.py)
        is a SchemaRegistryUnavailable that ends a replay.

confluent-kafka's exceptions stop at ``bridge/kafka``: every
public call there turns them into a :class:`KafkaFailure`
(``tests/test_error_tree.py`` checks both this and that every exception class
another module sees is in this tree, or listed there with the reason it is not).

A delivery attempt's outcome is not an exception but a plain value
(``bridge/delivery/outcomes.py``: ``Delivered``, ``Rejected``,
``CredentialsRejected``, ``DeliveryUnavailable``); the deliverer retries, pauses
or raises the final verdict, an :class:`EventRejected` or :class:`EventExpired`.
A :class:`RecordError` is complete when constructed (its attempts too) and refuses
changes after, so no verdict is amended on its way to a dead letter.

Messages must never carry secrets or person data (names, phone numbers, ids):
they end up in logs and in dead-letter headers.

The finer cause of a decode or mapping error is a member of :class:`DecodeCode` or
:class:`MappingCode`, and the limit an expired event passed an :class:`ExpiryCode`:
the one list of codes, which the docs must match (``tests/test_error_codes.py``
compares them).
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


class ExpiryCode(StrEnum):
    """Which limit an ``expired`` dead letter passed (docs/operations.md, the ``expired`` row)."""

    MAX_EVENT_AGE = "max_event_age"
    MAX_RETRY_DURATION = "max_retry_duration"


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
    BODY_TOO_LARGE = "body_too_large"


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

    def __init__(self, code: str, message: str, *, attempts: int = 0) -> None:
        self.code = code
        self.message = message
        # Delivery attempts made before this verdict (the dead letter's ``bridge.attempts``);
        # 0 for records that never reached delivery.
        self.attempts = attempts
        super().__init__(f"{code}: {message}")
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: object) -> None:
        """Refuse changes once constructed: a verdict is built whole, never amended.

        Dunder names stay writable: Python itself sets ``__traceback__``,
        ``__cause__`` and ``__notes__`` on exceptions it raises.
        """
        if getattr(self, "_sealed", False) and not name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} is immutable: pass {name} when raising")
        super().__setattr__(name, value)


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

    def __init__(self, status: int, response: str, *, attempts: int = 0) -> None:
        self.status = status
        self.response = response
        super().__init__(
            f"http_{status}", f"Vibes refused the event with HTTP {status}", attempts=attempts
        )


class EventExpired(RecordError):
    """The event is too old to send (``max_event_age``) or was retried too long
    (``max_retry_duration``); ``code`` says which."""

    reason: ClassVar[DeadLetterReason] = DeadLetterReason.EXPIRED
    code: ExpiryCode

    def __init__(self, code: ExpiryCode, message: str, *, attempts: int = 0) -> None:
        super().__init__(code, message, attempts=attempts)


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


class KafkaFailure(BridgeError):
    """Kafka did not do what the bridge asked: the broker, the client, or a message from it.

    The Kafka edge's own type for every failure it lets out, so that nothing outside
    ``bridge/kafka`` needs confluent-kafka's exception types to decide what to do.
    """


class KafkaCallFailed(KafkaFailure):
    """A librdkafka call raised where no finer meaning applies.

    ``code`` is librdkafka's error name (``_TRANSPORT``, ``_INVALID_ARG`` ...);
    ``fatal`` says the client can no longer be used, ``retriable`` that the same
    call may pass later. librdkafka's message is not kept: the name is stable and
    says enough, and the chained exception is there for a traceback.
    """

    def __init__(
        self, call: str, code: str, *, fatal: bool = False, retriable: bool = False
    ) -> None:
        self.call = call
        self.code = code
        self.fatal = fatal
        self.retriable = retriable
        super().__init__(f"{call}: {code}")
