"""The match-and-map stage: a decoded record value in, Vibes request bodies out.

No I/O happens here. The engine is built once by ``bridge.mapping.compiler``
from a checked configuration; per record it only runs what the rules need.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import Any, Final, NamedTuple

import orjson
from jmespath import exceptions as jmespath_errors

from bridge.errors import MappingCode, MappingError
from bridge.mapping.event_id import coordinates_event_id, given_event_id
from bridge.mapping.jmes import Evaluator, is_false
from bridge.mapping.templates import Template
from bridge.mapping.validate import checked_body_size, checked_event_type, recipient_value
from bridge.mapping.values import ValueExpression
from bridge.records import KAFKA_KEY, SourceRecord, TraceIds, kafka_document
from bridge.vibes.entity import MAX_BODY_BYTES

OTHER_EVENT_TYPE: Final = "other"
"""The metric label of an event whose type a template rendered from the record."""


class Priority(IntEnum):
    """A rule's ``priority:`` (``high``, ``normal``, ``low``); lower values go first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


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
    metric_event_type: str = OTHER_EVENT_TYPE
    """The rule's declared (literal) event type, or ``other`` when a template made it.

    What metrics label by: a rendered type comes from the record, an open set,
    and would make one series per distinct value.
    """
    trace: TraceIds | None = None
    """The record's trace when tracing is on: the parent of each delivery attempt's span."""
    max_age_seconds: float | None = None
    """The rule's own ``max_age``; None: ``delivery.max_event_age`` applies."""
    priority: Priority = Priority.NORMAL
    """The rule's ``priority``: which events take the next delivery slots first."""


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


class DebugData(Enum):
    """``debug_data`` other than a map of fields."""

    COORDINATES = "coordinates"  # omitted: {"rule", "topic", "partition", "offset"}
    NONE = "none"  # debug_data: false


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
    debug_data: tuple[ValueExpression, ...] | DebugData
    max_body_bytes: int = MAX_BODY_BYTES
    max_age_seconds: float | None = None
    priority: Priority = Priority.NORMAL

    metric_event_type: str = dataclasses.field(init=False)
    """What its events are labelled by: the literal type, or ``other`` for a template."""
    debug_trace: tuple[ValueExpression, ...] = dataclasses.field(init=False)
    """The ``debug_data`` fields written ``{trace: ...}``: filled from the record's trace."""

    def __post_init__(self) -> None:
        declared = self.declared_event_type
        object.__setattr__(self, "metric_event_type", declared or OTHER_EVENT_TYPE)
        fields = self.debug_data if isinstance(self.debug_data, tuple) else ()
        traced = tuple(field for field in fields if field.trace is not None)
        object.__setattr__(self, "debug_trace", traced)

    @property
    def declared_event_type(self) -> str | None:
        """The literal event type; None when a template renders it per record."""
        return self.event_type if isinstance(self.event_type, str) else None

    def matches(self, document: Any) -> bool:
        if self.when is None:
            return True
        try:
            return not is_false(self.when(document))
        except Exception as exc:  # the record boundary: see Engine.map
            raise evaluation_failure("when", exc) from None

    def emit(
        self, document: Any, record: SourceRecord, trace: TraceIds | None = None
    ) -> MappedEvent:
        """Build the body; raise :class:`MappingError` when the record cannot make a valid one.

        ``trace`` is the record's trace when tracing is on: it fills the ``{trace: ...}``
        fields of ``debug_data`` and goes with the event to delivery.
        """
        event_data = _fields(self.event_data, document)
        has_recipient = False
        for recipient in self.recipients:
            # Each evaluation is guarded inline, not through a helper: this is the hot
            # path, and a try costs nothing until something is raised.
            try:
                value = recipient.evaluate(document)
            except MappingError:
                raise
            except Exception as exc:  # named for the field; see Engine.map
                raise evaluation_failure(recipient.field, exc) from None
            if value is not None:
                event_data[recipient.key] = recipient_value(value, recipient.field)
                has_recipient = True
        if not has_recipient:
            names = ", ".join(recipient.key for recipient in self.recipients)
            raise MappingError(
                MappingCode.NO_RECIPIENT, f"recipient: none of {names} resolved to a value"
            )
        event_type = self.event_type
        if isinstance(event_type, Template):
            event_type = checked_event_type(_rendered(event_type, document))
        event_id = None
        if self.event_id is not None:
            try:
                event_id = given_event_id(self.event_id.evaluate(document))
            except MappingError:
                raise
            except Exception as exc:  # named for the field; see Engine.map
                raise evaluation_failure(self.event_id.field, exc) from None
        if event_id is None:
            event_id = coordinates_event_id(
                self.name, record.topic, record.partition, record.offset
            )
        body: dict[str, Any] = {
            "event_id": event_id,
            "event_type": event_type,
            "event_data": event_data,
        }
        debug_data = self._debug_data(document, record, trace)
        if debug_data is not None:
            body["debug_data"] = debug_data
        return MappedEvent(
            self.name,
            event_type,
            event_id,
            self.company_key,
            checked_body_size(_encode(body), self.max_body_bytes),
            record,
            self.metric_event_type,
            trace,
            self.max_age_seconds,
            self.priority,
        )

    def _debug_data(
        self, document: Any, record: SourceRecord, trace: TraceIds | None
    ) -> dict[str, Any] | None:
        if self.debug_data is DebugData.COORDINATES:
            return {
                "rule": self.name,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            }
        if self.debug_data is DebugData.NONE:
            return None
        debug = _fields(self.debug_data, document)
        if trace is not None:
            for field in self.debug_trace:
                traced = trace.trace_id if field.trace == "trace_id" else trace.traceparent
                debug[field.key] = traced
        return debug


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

    def declared_event_types(self) -> frozenset[str]:
        """Every rule's literal event type: the bounded set metric labels are drawn from."""
        return frozenset(
            declared
            for rules in self._rules_by_topic.values()
            for rule in rules
            if (declared := rule.declared_event_type) is not None
        )

    def map(
        self, value: dict[str, Any], record: SourceRecord, trace: TraceIds | None = None
    ) -> MappingResult:
        """Map one decoded value. ``value`` is taken over: ``_kafka`` may be added to it.

        ``trace`` is the record's trace when tracing is on (see :meth:`CompiledRule.emit`).

        Nothing a record holds can make this raise: every failure of a rule, even
        one nobody foresaw (a value nested too deeply for a library), becomes that
        rule's :class:`RuleFailure`, so one record never stops the others.
        """
        rules = self._rules_by_topic.get(record.topic)
        if not rules:
            return MappingResult((), ())
        if record.topic in self._topics_reading_kafka:
            value[KAFKA_KEY] = kafka_document(record)
        events: list[MappedEvent] = []
        failures: list[RuleFailure] = []
        for rule in rules:
            try:
                if rule.matches(value):
                    events.append(rule.emit(value, record, trace))
            except MappingError as exc:
                failures.append(RuleFailure(rule.name, _in_rule(rule.name, exc)))
            except Exception as exc:  # the boundary; the fields name theirs first
                failure = evaluation_failure("the rule", exc)
                failures.append(RuleFailure(rule.name, _in_rule(rule.name, failure)))
        return MappingResult(tuple(events), tuple(failures))


def _fields(fields: tuple[ValueExpression, ...], document: Any) -> dict[str, Any]:
    collected: dict[str, Any] = {}
    for field in fields:
        # Guarded inline, as in CompiledRule.emit.
        try:
            value = field.evaluate(document)
        except MappingError:
            raise
        except Exception as exc:  # named for the field; see Engine.map
            raise evaluation_failure(field.field, exc) from None
        if value is not None:
            collected[field.key] = value
    return collected


def _rendered(template: Template, document: Any) -> str | None:
    try:
        return template.render(document)
    except Exception as exc:  # named for the field; see Engine.map
        raise evaluation_failure("event_type", exc) from None


def _encode(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise MappingError(
            MappingCode.UNENCODABLE,
            f"{_unencodable_part(body)}: JSON cannot carry the value ({exc})",
        ) from None


def _unencodable_part(body: dict[str, Any]) -> str:
    """Which field of a body JSON refused (only on failure, so the hot path pays nothing)."""
    parts: list[tuple[str, Any]] = [("event_id", body["event_id"])]
    parts.append(("event_type", body["event_type"]))
    for section in ("event_data", "debug_data"):
        parts.extend((f"{section}.{key}", value) for key, value in body.get(section, {}).items())
    for name, value in parts:
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return name
    return "the event"


def evaluation_failure(field: str, exc: Exception) -> MappingError:
    """The mapping error for an exception raised while evaluating ``field``.

    Library messages can quote the record's values (person data): name only the kind.
    """
    code = MappingCode.EXPRESSION_ERROR
    if isinstance(exc, jmespath_errors.JMESPathTypeError):
        detail = f"a JMESPath function got an argument of the wrong type ({exc.function_name})"
    elif isinstance(exc, jmespath_errors.JMESPathError):
        detail = f"a JMESPath expression failed ({type(exc).__name__})"
    elif isinstance(exc, RecursionError):
        detail = "the value nests too deeply to evaluate"
    elif isinstance(exc, orjson.JSONEncodeError):
        code, detail = MappingCode.UNENCODABLE, f"JSON cannot carry the value ({exc})"
    else:
        detail = f"the expression failed ({type(exc).__name__})"
    return MappingError(code, f"{field}: {detail}")


def _in_rule(rule: str, error: MappingError) -> MappingError:
    """The same error, its message starting with the rule: ``rule order-shipped: ...``."""
    return MappingError(error.code, f"rule {rule}: {error.message}")
