"""Compile the ``sources`` and ``rules`` of a loaded file into an :class:`Engine`.

Works from the validated models (:class:`RuleSettings`, :class:`SourceSettings`),
each rule and source validated on its own, so that a mistake elsewhere in the file
(say, in ``vibes:``) hides none of the rules' problems. A rule that does not
validate (``check_settings`` reports why) is still compiled from the keys that do,
with harmless stand-ins for required keys it lacks: a misspelt ``whn:`` must not
hide a bad expression two lines below. Such a rule never reaches the engine.

It checks only what the models cannot: expressions, templates, literal event
types, duplicate names, topics without a source or listed twice, schema files,
and field paths against Avro schemas. Every problem is located by its key path
in the document.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from bridge.codecs import (
    SchemaFileError,
    json_schema_shape,
    load_avro_schema,
    load_json_schema,
)
from bridge.codecs.avro_schema import AvroSchema
from bridge.config.loader import resolve_path
from bridge.config.model import RuleSettings, SourceSettings, ValueSpec
from bridge.config.yaml_source import KeyPath, SourceDocument
from bridge.errors import Problem
from bridge.mapping.avro_paths import conversion_problem, unknown_field_paths
from bridge.mapping.engine import CompiledRule, DebugData, Engine, Priority
from bridge.mapping.event_id import coordinates_event_id
from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression, reads_kafka
from bridge.mapping.templates import Template, TemplateSyntaxError, parse_template
from bridge.mapping.values import ValueExpression, ValueSpecError, compile_value
from bridge.vibes.entity import MAX_BODY_BYTES, RECIPIENT_FIELDS, is_valid_event_type

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(slots=True)
class _Compilation:
    document: SourceDocument
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    schemas: dict[str, Any] = field(default_factory=dict)  # topic -> what its decoder reads
    # topic -> (the Avro-like shape rule paths are checked against, how messages name it)
    shapes: dict[str, tuple[AvroSchema, str]] = field(default_factory=dict)
    topics: set[str] = field(default_factory=set)

    def problem(self, key_path: KeyPath, message: str) -> None:
        self.problems.append(self.document.problem(key_path, message))


# Every expression of one rule, with where it is written (for the schema check);
# the ``as:`` conversion when it is a ``path`` value's one expression.
_Expressions = list[tuple[KeyPath, Expression, str | None]]


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """The engine, and the schemas parsed on the way for the decoders (topic to an Avro
    schema or a Protobuf message descriptor)."""

    engine: Engine
    schemas: dict[str, Any]
    # Rules whose constant parts alone come close to vibes.max_body_bytes.
    warnings: tuple[Problem, ...] = ()


def compile_rules(document: SourceDocument) -> tuple[CompiledMapping | None, list[Problem]]:
    """The compiled rules of the file, or None with every problem found."""
    data = document.data if isinstance(document.data, dict) else {}
    state = _Compilation(document)
    for index, source, _complete in _models(SourceSettings, data.get("sources"), {}):
        if "topic" in source.model_fields_set:
            _load_source(state, ("sources", index), source)
    default_company = _vibes_company_key(data)
    max_body_bytes = _max_body_bytes(data)
    rules_by_topic: dict[str, list[CompiledRule]] = {}
    topics_reading_kafka: set[str] = set()
    seen_names: dict[str, int] = {}
    for index, rule, complete in _models(RuleSettings, data.get("rules"), _RULE_STAND_INS):
        key_path: KeyPath = ("rules", index)
        if rule.name in seen_names:  # (a stand-in name is "", never a duplicate)
            first = document.line_of(("rules", seen_names[rule.name]))
            state.problem(
                (*key_path, "name"), f"duplicate rule name {rule.name!r} (first at line {first})"
            )
        if rule.name:
            seen_names.setdefault(rule.name, index)
        parts: _Expressions = []
        compiled = _compile_rule(state, key_path, rule, default_company, parts, max_body_bytes)
        topics = _rule_topics(state, key_path, rule.topic)
        if compiled is not None and topics:
            _warn_when_constants_come_close(state, key_path, compiled, topics)
        _check_schema_paths(state, topics, parts)
        if any(reads_kafka(expression) for _, expression, _ in parts):
            topics_reading_kafka.update(topics)
        if compiled is not None and complete:
            for topic in topics:
                rules_by_topic.setdefault(topic, []).append(compiled)
    if state.problems:
        return None, state.problems
    engine = Engine(
        {topic: tuple(rules) for topic, rules in rules_by_topic.items()},
        topics_reading_kafka=frozenset(topics_reading_kafka),
    )
    return CompiledMapping(engine, state.schemas, tuple(state.warnings)), []


# Values for the required keys of a rule that lacks them: each compiles without a
# problem of its own (check_settings already says the key is missing).
_RULE_STAND_INS: dict[str, Any] = {
    "name": "",
    "topic": [],
    "event_type": "missing",
    "recipient": {},
}


def _models(
    model: type[_Model], raw: Any, stand_ins: Mapping[str, Any]
) -> Iterator[tuple[int, _Model, bool]]:
    """Each dict of a list as ``model``, and whether it validated as a whole.

    When it does not, the model is built from the keys that validate on their
    own, the stand-ins filling the required ones that do not.
    """
    if not isinstance(raw, list):
        return
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        try:
            yield index, model.model_validate(item), True
        except ValidationError:
            yield index, _partial(model, item, stand_ins), False


def _partial(model: type[_Model], item: dict[str, Any], stand_ins: Mapping[str, Any]) -> _Model:
    values = dict(stand_ins)
    for name, (key, adapter) in _field_adapters(model).items():
        if key in item:
            try:
                values[name] = adapter.validate_python(item[key])
            except ValidationError:
                continue
    return model.model_construct(**values)


@cache
def _field_adapters(model: type[BaseModel]) -> dict[str, tuple[str, TypeAdapter[Any]]]:
    """Each field's key in the file and a validator for it alone, with its constraints."""
    adapters: dict[str, tuple[str, TypeAdapter[Any]]] = {}
    for name, info in model.model_fields.items():
        constrained: Any = (
            Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        )
        adapters[name] = (info.alias or name, TypeAdapter(constrained))
    return adapters


def _vibes_company_key(data: Mapping[str, Any]) -> str:
    # Read on its own: a mistake elsewhere in vibes: must not hide the rules' problems.
    vibes = data.get("vibes")
    key = vibes.get("company_key") if isinstance(vibes, dict) else None
    return key if isinstance(key, str) else ""


def _max_body_bytes(data: Mapping[str, Any]) -> int:
    # Read on its own, as the company key is; the model reports a bad value.
    vibes = data.get("vibes")
    value = vibes.get("max_body_bytes") if isinstance(vibes, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return MAX_BODY_BYTES


# validate warns when a rule's constant parts alone take this much of the body limit.
CLOSE_TO_BODY_LIMIT = 0.75


def _warn_when_constants_come_close(
    state: _Compilation, key_path: KeyPath, rule: CompiledRule, topics: list[str]
) -> None:
    size = _constant_body_size(rule, topics)
    limit = rule.max_body_bytes
    if size < CLOSE_TO_BODY_LIMIT * limit:
        return
    message = (
        f"warning: rule {rule.name}: its constant parts alone make a {size}-byte body, "
        f"{100 * size // limit}% of vibes.max_body_bytes ({limit}); what records add may "
        "pass it (body_too_large dead letters)"
    )
    state.warnings.append(state.document.problem(key_path, message))


def _constant_body_size(rule: CompiledRule, topics: list[str]) -> int:
    """The smallest body the rule can make: what every record's body holds.

    Counted: the event type's text (a template's literal text), the ``{value:}``
    constants with their keys, the default ``debug_data`` (its longest topic),
    the event id, and the JSON around them. A field read from the record may be
    absent (null leaves it out), so it adds nothing here.
    """

    def constants(fields: tuple[ValueExpression, ...]) -> dict[str, Any]:
        fixed = {field.key: field.evaluate(None) for field in fields if not field.expressions}
        return {key: value for key, value in fixed.items() if value is not None}

    event_type = rule.event_type
    if isinstance(event_type, Template):
        event_type = "".join(event_type.literals)
    event_id: Any = coordinates_event_id(rule.name, max(topics, key=len), 0, 0)
    if rule.event_id is not None:
        event_id = constants((rule.event_id,)).get(rule.event_id.key, "")
    body: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "event_data": constants(rule.recipients) | constants(rule.event_data),
    }
    if rule.debug_data is DebugData.COORDINATES:
        body["debug_data"] = {"rule": rule.name, "topic": max(topics, key=len)}
        body["debug_data"] |= {"partition": 0, "offset": 0}
    elif isinstance(rule.debug_data, tuple):
        body["debug_data"] = constants(rule.debug_data)
    return len(orjson.dumps(body))


def _load_source(state: _Compilation, key_path: KeyPath, source: SourceSettings) -> None:
    if source.topic in state.topics:
        state.problem((*key_path, "topic"), f"topic {source.topic!r} has two sources")
    state.topics.add(source.topic)
    if source.schema_file is None:
        return
    try:
        _load_schema(state, source, resolve_path(state.document.path, source.schema_file))
    except SchemaFileError as exc:
        state.problem((*key_path, "schema"), str(exc))


def _load_schema(state: _Compilation, source: SourceSettings, path: Path) -> None:
    """The source's schema file: for its decoder and for checking the rules' paths."""
    topic = source.topic
    if source.format.is_avro:
        schema = load_avro_schema(path)
        state.schemas[topic] = schema
        state.shapes[topic] = (schema, "Avro schema")
    elif source.format.is_protobuf and source.message is not None:
        # Imported here: only Protobuf sources pay for the protobuf runtime.
        from bridge.codecs.protobuf_codec import load_message_descriptor, protobuf_shape

        descriptor = load_message_descriptor(path, source.message)
        state.schemas[topic] = descriptor
        state.shapes[topic] = (protobuf_shape(descriptor), "Protobuf message")
    elif source.format == "confluent-json":
        state.shapes[topic] = (json_schema_shape(load_json_schema(path), {}), "JSON Schema")


def _rule_topics(state: _Compilation, key_path: KeyPath, topics: list[str]) -> list[str]:
    """The rule's topics, each once; a topic listed twice would emit every event twice."""
    unique: list[str] = []
    for position, topic in enumerate(topics):
        where = (*key_path, "topic", position) if len(topics) > 1 else (*key_path, "topic")
        if topic in unique:
            state.problem(where, f"topic {topic!r} is listed twice")
            continue
        if topic not in state.topics:
            state.problem(where, f"topic {topic!r} has no entry in sources")
        unique.append(topic)
    return unique


def _compile_rule(
    state: _Compilation,
    key_path: KeyPath,
    rule: RuleSettings,
    default_company: str,
    parts: _Expressions,
    max_body_bytes: int,
) -> CompiledRule | None:
    """Compile every part of a rule, reporting each bad part; None if any was bad."""
    before = len(state.problems)
    when = _compile_when(state, key_path, rule.when, parts)
    event_type = _compile_event_type(state, key_path, rule.event_type, parts)
    event_id = None
    if rule.event_id is not None:
        event_id = _compile_value(
            state, (*key_path, "event_id"), "event_id", "", rule.event_id, parts
        )
    recipients = _compile_recipients(state, key_path, rule.recipient, parts)
    event_data = _compile_fields(state, key_path, "event_data", rule.event_data, parts)
    for value in event_data:
        if value.key in RECIPIENT_FIELDS:
            state.problem(
                (*key_path, "event_data", value.key),
                f"{value.key} is a recipient field: put it under recipient:",
            )
    debug_data: tuple[ValueExpression, ...] | DebugData = DebugData.COORDINATES
    if rule.debug_data is False:
        debug_data = DebugData.NONE
    elif rule.debug_data is not None:
        debug_data = tuple(_compile_fields(state, key_path, "debug_data", rule.debug_data, parts))
    if len(state.problems) > before or event_type is None:
        return None
    return CompiledRule(
        name=rule.name,
        company_key=rule.company_key or default_company,
        when=when.evaluate if when is not None else None,
        event_type=event_type,
        event_id=event_id,
        event_data=tuple(event_data),
        recipients=tuple(recipients),
        debug_data=debug_data,
        max_body_bytes=max_body_bytes,
        max_age_seconds=None if rule.max_age is None else rule.max_age.total_seconds(),
        priority=Priority[rule.priority.upper()],
    )


def _compile_when(
    state: _Compilation, key_path: KeyPath, when: str | None, parts: _Expressions
) -> Expression | None:
    if when is None:
        return None
    try:
        expression = compile_expression(when)
    except ExpressionSyntaxError as exc:
        state.problem((*key_path, "when"), f"when: {exc}")
        return None
    parts.append(((*key_path, "when"), expression, None))
    return expression


def _compile_event_type(
    state: _Compilation, key_path: KeyPath, spec: ValueSpec, parts: _Expressions
) -> str | Template | None:
    where = (*key_path, "event_type")
    if isinstance(spec, str):
        if not is_valid_event_type(spec):
            state.problem(
                where,
                f"event_type {spec!r} may hold only letters, digits, '-' and '_' "
                "(a computed type is written {template: ...})",
            )
            return None
        return spec
    if isinstance(spec, dict) and set(spec) == {"template"} and isinstance(spec["template"], str):
        try:
            template = parse_template(spec["template"])
        except TemplateSyntaxError as exc:
            state.problem(where, f"event_type: invalid template: {exc}")
            return None
        parts.extend((where, expression, None) for expression in template.expressions)
        return template
    state.problem(where, "event_type must be a literal string or {template: ...}")
    return None


def _compile_recipients(
    state: _Compilation, key_path: KeyPath, specs: dict[str, ValueSpec], parts: _Expressions
) -> list[ValueExpression]:
    for name in specs:
        if name not in RECIPIENT_FIELDS:
            state.problem(
                (*key_path, "recipient", name),
                f"unknown recipient {name!r}: use one of {', '.join(RECIPIENT_FIELDS)}",
            )
    known = {name: spec for name, spec in specs.items() if name in RECIPIENT_FIELDS}
    return _compile_fields(state, key_path, "recipient", known, parts)


def _compile_fields(
    state: _Compilation,
    key_path: KeyPath,
    section: str,
    specs: dict[str, ValueSpec],
    parts: _Expressions,
) -> list[ValueExpression]:
    compiled = []
    for key, spec in specs.items():
        value = _compile_value(state, (*key_path, section, key), section, key, spec, parts)
        if value is not None:
            compiled.append(value)
    return compiled


def _compile_value(
    state: _Compilation,
    where: KeyPath,
    section: str,
    key: str,
    spec: ValueSpec,
    parts: _Expressions,
) -> ValueExpression | None:
    try:
        value = compile_value(section, key, spec)
    except ValueSpecError as exc:
        label = f"{section}.{key}" if key else section
        state.problem(where if exc.key is None else (*where, exc.key), f"{label}: {exc}")
        return None
    parts.extend((where, expression, value.conversion) for expression in value.expressions)
    return value


def _check_schema_paths(state: _Compilation, topics: list[str], parts: _Expressions) -> None:
    """A field path the topic's schema lacks would silently empty messages, and a
    conversion its type never takes would fail every record: refuse both."""
    reported: set[tuple[KeyPath, str]] = set()
    for topic in topics:
        if topic not in state.shapes:
            continue
        shape, label = state.shapes[topic]
        for where, expression, conversion in parts:
            messages = unknown_field_paths(shape, expression.ast, label)
            if conversion is not None and not messages:
                problem = conversion_problem(shape, expression.ast, conversion, label)
                messages = [] if problem is None else [problem]
            for message in messages:
                if (where, message) not in reported:
                    reported.add((where, message))
                    state.problem(where, f"{message} (topic {topic})")
