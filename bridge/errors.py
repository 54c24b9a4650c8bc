"""One exception tree for the whole bridge.

Every leaf maps to exactly one outcome for a record, so the consumer loop can
decide by type instead of by message::

    BridgeError
    ├── ConfigError              the configuration file is wrong: refuse to start (exit 2)
    ├── RecordError              this record can never succeed: dead-letter it
    │   ├── DecodeError          bytes that are not a valid value   (reason decode_error)
    │   └── MappingError         a value the rules cannot map       (reason mapping_error)
    └── TransientError           the world is briefly unavailable: retry, never dead-letter
        └── SchemaRegistryUnavailable

Messages must never carry secrets or person data (names, phone numbers, ids):
they end up in logs and in dead-letter headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""


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

    reason: ClassVar[str] = "record_error"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class DecodeError(RecordError):
    """The record's bytes are not a value of the source's format."""

    reason: ClassVar[str] = "decode_error"


class MappingError(RecordError):
    """The decoded value cannot be turned into a valid Vibes event by a rule."""

    reason: ClassVar[str] = "mapping_error"


class TransientError(BridgeError):
    """Something outside the record failed for now; the record must be retried."""


class SchemaRegistryUnavailable(TransientError):
    """The Schema Registry could not be reached or answered 5xx."""
