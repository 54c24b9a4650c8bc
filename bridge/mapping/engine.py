"""The match-and-map stage: a decoded record value in, Vibes request bodies out.

No I/O happens here. The engine is built once by ``bridge.mapping.compiler``
from a checked configuration; per record it only runs what the rules need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from jmespath import exceptions as jmespath_errors

from bridge.errors import MappingError
from bridge.mapping.jmes import Evaluator, is_false
from bridge.mapping.templates import Template
from bridge.mapping.validate import (
    checked_event_type,
    coordinates_event_id,
    given_event_id,
    recipient_value,
)
from bridge.mapping.values import ValueExpression
from bridge.records import SourceRecord


class MappedEvent(NamedTuple):
    """One event to POST: the exact body, and what delivery needs to know about it.

    NamedTuples rather than frozen dataclasses for the per-record results: just as
    immutable, and a third of the construction cost on the hot path.
    """

    rule: str
    event_type: str
    event_id: str
    company_key: str
    body: bytes
    source: SourceRecord


class RuleFailure(NamedTuple):
    """A rule that matched the record but could not map it."""

    rule: str
    error: MappingError


class MappingResult(NamedTuple):
    """Everything the rules made of one record, in the order the rules are written."""

    events: tuple[MappedEvent, ...]
    failures: tuple[RuleFailure, ...]

    @property
    def matched(self) -> bool:
        """False when no rule took the record: it is skipped and counted, not an error."""
        return bool(self.events or self.failures)


DEFAULT_DEBUG_DATA = "default"  # marker: {"rule", "topic", "partition", "offset"}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule, ready to run."""

    name: str
    company_key: str
    when: Evaluator | None
    event_type: str | Template
    event_id: ValueExpression | None
    event_data: tuple[ValueExpression, ...]
    recipients: tuple[ValueExpression, ...]
    # A tuple of fields, None for no debug_data, or DEFAULT_DEBUG_DATA.
    debug_data: tuple[ValueExpression, ...] | str | None

    def matches(self, document: Any) -> bool:
        return self.when is None or not is_false(self.when(document))

    def emit(self, document: Any, record: SourceRecord) -> MappedEvent:
        """Build the body; raise :class:`MappingError` when the record cannot make a valid one."""
        event_data = _fields(self.event_data, document)
        has_recipient = False
        for recipient in self.recipients:
            value = recipient.evaluate(document)
            if value is not None:
                event_data[recipient.key] = recipient_value(value, recipient.field)
                has_recipient = True
        if not has_recipient:
            raise MappingError(
                "no_recipient", f"rule {self.name}: no recipient field resolved to a value"
            )
        event_type = self.event_type
        if isinstance(event_type, Template):
            event_type = checked_event_type(event_type.render(document), self.name)
        event_id = None
        if self.event_id is not None:
            event_id = given_event_id(self.event_id.evaluate(document))
        if event_id is None:
            event_id = coordinates_event_id(
                self.name, record.topic, record.partition, record.offset
            )
        body: dict[str, Any] = {
            "event_id": event_id,
            "event_type": event_type,
            "event_data": event_data,
        }
        if self.debug_data == DEFAULT_DEBUG_DATA:
            body["debug_data"] = {
                "rule": self.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            }
        elif isinstance(self.debug_data, tuple):
            body["debug_data"] = _fields(self.debug_data, document)
        return MappedEvent(self.name, event_type, event_id, self.company_key, _encode(body), record)


class Engine:
    """Matches a record against the rules of its topic and maps every match (fan-out)."""

    def __init__(
        self,
        rules_by_topic: dict[str, tuple[CompiledRule, ...]],
        *,
        topics_reading_kafka: frozenset[str],
    ) -> None:
        self._rules_by_topic = rules_by_topic
        # Building the _kafka document costs a little per record: only for topics
        # where some rule can read it.
        self._topics_reading_kafka = topics_reading_kafka

    def rules_for(self, topic: str) -> tuple[CompiledRule, ...]:
        return self._rules_by_topic.get(topic, ())

    def map(self, value: dict[str, Any], record: SourceRecord) -> MappingResult:
        """Map one decoded value. ``value`` is taken over: ``_kafka`` may be added to it."""
        rules = self._rules_by_topic.get(record.topic)
        if not rules:
            return MappingResult((), ())
        if record.topic in self._topics_reading_kafka:
            value["_kafka"] = kafka_document(record)
        events: list[MappedEvent] = []
        failures: list[RuleFailure] = []
        for rule in rules:
            try:
                if rule.matches(value):
                    events.append(rule.emit(value, record))
            except MappingError as exc:
                failures.append(RuleFailure(rule.name, exc))
            except (jmespath_errors.JMESPathError, TypeError, ValueError, OverflowError) as exc:
                failures.append(RuleFailure(rule.name, _runtime_error(rule.name, exc)))
        return MappingResult(tuple(events), tuple(failures))


def kafka_document(record: SourceRecord) -> dict[str, Any]:
    """The reserved ``_kafka`` key of the record document (spec section 1)."""
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": None if record.key is None else record.key.decode("utf-8", "replace"),
        "timestamp": record.timestamp_ms,
        "headers": {
            name: "" if raw is None else raw.decode("utf-8", "replace")
            for name, raw in record.headers
        },
    }


def _fields(fields: tuple[ValueExpression, ...], document: Any) -> dict[str, Any]:
    collected: dict[str, Any] = {}
    for field in fields:
        value = field.evaluate(document)
        if value is not None:
            collected[field.key] = value
    return collected


def _encode(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise MappingError("unencodable", "the event holds a value JSON cannot carry") from None


def _runtime_error(rule: str, exc: Exception) -> MappingError:
    # Library messages can quote the record's values (person data): name only the kind.
    if isinstance(exc, jmespath_errors.JMESPathTypeError):
        detail = f"a JMESPath function got an argument of the wrong type ({exc.function_name})"
    elif isinstance(exc, jmespath_errors.JMESPathError):
        detail = "a JMESPath expression failed"
    else:
        detail = f"an expression failed ({type(exc).__name__})"
    return MappingError("expression_error", f"rule {rule}: {detail}")
