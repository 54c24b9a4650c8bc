"""Compile the ``sources`` and ``rules`` of a loaded file into an :class:`Engine`.

Works on the raw document (not on the pydantic models) so that it can still
check every rule when some other part of the file is wrong: the user sees all
problems at once. It checks only what the models cannot: expressions,
templates, literal event types, duplicate names, topics without a source,
schema files, and field paths against Avro schemas. Anything structurally
broken is skipped here because the models already report it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bridge.codecs import AvroSchema, SchemaFileError, load_avro_schema
from bridge.codecs.avro_paths import unknown_field_paths
from bridge.config.loader import resolve_path
from bridge.config.yaml_source import KeyPath, SourceDocument
from bridge.errors import Problem
from bridge.mapping.engine import DEFAULT_DEBUG_DATA, CompiledRule, Engine
from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression
from bridge.mapping.templates import Template, TemplateSyntaxError, parse_template
from bridge.mapping.values import ValueExpression, ValueSpecError, compile_value
from bridge.vibes.entity import RECIPIENT_FIELDS, is_valid_event_type

_AVRO_CHECKED_FORMATS = ("avro", "confluent-avro")


@dataclass(slots=True)
class _Compilation:
    document: SourceDocument
    problems: list[Problem] = field(default_factory=list)
    schemas: dict[str, AvroSchema] = field(default_factory=dict)  # topic -> parsed schema
    topics: set[str] = field(default_factory=set)

    def problem(self, key_path: KeyPath, message: str) -> None:
        self.problems.append(self.document.problem(key_path, message))


# Every expression of one rule, with where it is written (for the schema check).
_Expressions = list[tuple[KeyPath, Expression]]


@dataclass(frozen=True, slots=True)
class CompiledMapping:
    """The engine, and the Avro schemas parsed on the way (topic to schema) for the decoders."""

    engine: Engine
    schemas: dict[str, AvroSchema]


def compile_rules(document: SourceDocument) -> tuple[CompiledMapping | None, list[Problem]]:
    """The compiled rules of the file, or None with every problem found."""
    data = document.data if isinstance(document.data, dict) else {}
    state = _Compilation(document)
    _load_sources(state, data.get("sources"))
    default_company = _vibes_company_key(data)
    rules_by_topic: dict[str, list[CompiledRule]] = {}
    topics_reading_kafka: set[str] = set()
    seen_names: dict[str, int] = {}
    for index, raw_rule in _items(data.get("rules")):
        if not isinstance(raw_rule, dict):
            continue
        key_path: KeyPath = ("rules", index)
        name = raw_rule.get("name")
        if isinstance(name, str):
            if name in seen_names:
                first = document.line_of(("rules", seen_names[name]))
                state.problem(
                    (*key_path, "name"), f"duplicate rule name {name!r} (first at line {first})"
                )
            seen_names.setdefault(name, index)
        parts: _Expressions = []
        rule = _compile_rule(state, key_path, raw_rule, default_company, parts)
        topics = _rule_topics(state, key_path, raw_rule.get("topic"))
        _check_schema_paths(state, topics, parts)
        if any(_reads_kafka(expression) for _, expression in parts):
            topics_reading_kafka.update(topics)
        if rule is not None:
            for topic in topics:
                rules_by_topic.setdefault(topic, []).append(rule)
    if state.problems:
        return None, state.problems
    engine = Engine(
        {topic: tuple(rules) for topic, rules in rules_by_topic.items()},
        topics_reading_kafka=frozenset(topics_reading_kafka),
    )
    return CompiledMapping(engine, state.schemas), []


def _items(raw: Any) -> Iterator[tuple[int, Any]]:
    return enumerate(raw) if isinstance(raw, list) else iter(())


def _vibes_company_key(data: dict[str, Any]) -> str:
    vibes = data.get("vibes")
    key = vibes.get("company_key") if isinstance(vibes, dict) else None
    return key if isinstance(key, str) else ""


def _load_sources(state: _Compilation, raw_sources: Any) -> None:
    for index, source in _items(raw_sources):
        if not isinstance(source, dict) or not isinstance(source.get("topic"), str):
            continue
        topic: str = source["topic"]
        if topic in state.topics:
            state.problem(("sources", index, "topic"), f"topic {topic!r} has two sources")
        state.topics.add(topic)
        schema_name = source.get("schema")
        if source.get("format") in _AVRO_CHECKED_FORMATS and isinstance(schema_name, str):
            try:
                schema_path = resolve_path(state.document.path, schema_name)
                state.schemas[topic] = load_avro_schema(schema_path)
            except SchemaFileError as exc:
                state.problem(("sources", index, "schema"), str(exc))


def _rule_topics(state: _Compilation, key_path: KeyPath, raw_topic: Any) -> list[str]:
    topics = [raw_topic] if isinstance(raw_topic, str) else raw_topic
    if not isinstance(topics, list):
        return []
    valid = [topic for topic in topics if isinstance(topic, str)]
    for topic in valid:
        if topic not in state.topics:
            state.problem((*key_path, "topic"), f"topic {topic!r} has no entry in sources")
    return valid


def _compile_rule(
    state: _Compilation,
    key_path: KeyPath,
    raw: dict[str, Any],
    default_company: str,
    parts: _Expressions,
) -> CompiledRule | None:
    """Compile every part of a rule, reporting each bad part; None if any was bad."""
    before = len(state.problems)
    name = raw.get("name") if isinstance(raw.get("name"), str) else f"rules[{key_path[1]}]"
    when = _compile_when(state, key_path, raw.get("when"), parts)
    event_type = _compile_event_type(state, key_path, raw.get("event_type"), parts)
    event_id = None
    if raw.get("event_id") is not None:
        event_id = _compile_value(
            state, (*key_path, "event_id"), "event_id", "", raw["event_id"], parts
        )
    recipients = _compile_recipients(state, key_path, raw.get("recipient"), parts)
    event_data = _compile_fields(state, key_path, "event_data", raw.get("event_data"), parts)
    for value in event_data:
        if value.key in RECIPIENT_FIELDS:
            state.problem(
                (*key_path, "event_data", value.key),
                f"{value.key} is a recipient field: put it under recipient:",
            )
    debug_data: tuple[ValueExpression, ...] | str | None = DEFAULT_DEBUG_DATA
    raw_debug = raw.get("debug_data")
    if raw_debug is False:
        debug_data = None
    elif isinstance(raw_debug, dict):
        debug_data = tuple(_compile_fields(state, key_path, "debug_data", raw_debug, parts))
    company_key = raw.get("company_key") or default_company
    if len(state.problems) > before or event_type is None or not isinstance(company_key, str):
        return None
    return CompiledRule(
        name=str(name),
        company_key=company_key,
        when=when.evaluate if when is not None else None,
        event_type=event_type,
        event_id=event_id,
        event_data=tuple(event_data),
        recipients=tuple(recipients),
        debug_data=debug_data,
    )


def _compile_when(
    state: _Compilation, key_path: KeyPath, raw_when: Any, parts: _Expressions
) -> Expression | None:
    if not isinstance(raw_when, str):
        return None
    try:
        expression = compile_expression(raw_when)
    except ExpressionSyntaxError as exc:
        state.problem((*key_path, "when"), f"when: {exc}")
        return None
    parts.append(((*key_path, "when"), expression))
    return expression


def _compile_event_type(
    state: _Compilation, key_path: KeyPath, raw: Any, parts: _Expressions
) -> str | Template | None:
    where = (*key_path, "event_type")
    if isinstance(raw, str):
        if not is_valid_event_type(raw):
            state.problem(
                where,
                f"event_type {raw!r} may hold only letters, digits, '-' and '_' "
                "(a computed type is written {template: ...})",
            )
            return None
        return raw
    if isinstance(raw, dict) and set(raw) == {"template"} and isinstance(raw["template"], str):
        try:
            template = parse_template(raw["template"])
        except TemplateSyntaxError as exc:
            state.problem(where, f"event_type: invalid template: {exc}")
            return None
        parts.extend((where, expression) for expression in template.expressions)
        return template
    if raw is not None:
        state.problem(where, "event_type must be a literal string or {template: ...}")
    return None


def _compile_recipients(
    state: _Compilation, key_path: KeyPath, raw: Any, parts: _Expressions
) -> list[ValueExpression]:
    if not isinstance(raw, dict):
        return []
    for name in raw:
        if name not in RECIPIENT_FIELDS:
            state.problem(
                (*key_path, "recipient", name),
                f"unknown recipient {name!r}: use one of {', '.join(RECIPIENT_FIELDS)}",
            )
    known = {name: spec for name, spec in raw.items() if name in RECIPIENT_FIELDS}
    return _compile_fields(state, key_path, "recipient", known, parts)


def _compile_fields(
    state: _Compilation, key_path: KeyPath, section: str, raw: Any, parts: _Expressions
) -> list[ValueExpression]:
    if not isinstance(raw, dict):
        return []
    compiled = []
    for key, spec in raw.items():
        value = _compile_value(state, (*key_path, section, key), section, key, spec, parts)
        if value is not None:
            compiled.append(value)
    return compiled


def _compile_value(
    state: _Compilation,
    where: KeyPath,
    section: str,
    key: str,
    spec: Any,
    parts: _Expressions,
) -> ValueExpression | None:
    try:
        value = compile_value(section, key, spec)
    except ValueSpecError as exc:
        label = f"{section}.{key}" if key else section
        state.problem(where if exc.key is None else (*where, exc.key), f"{label}: {exc}")
        return None
    parts.extend((where, expression) for expression in value.expressions)
    return value


def _check_schema_paths(state: _Compilation, topics: list[str], parts: _Expressions) -> None:
    """A field path the topic's Avro schema lacks would silently empty messages: refuse it."""
    reported: set[tuple[KeyPath, str]] = set()
    for topic in topics:
        schema = state.schemas.get(topic)
        if schema is None:
            continue
        for where, expression in parts:
            for message in unknown_field_paths(schema, expression.ast):
                if (where, message) not in reported:
                    reported.add((where, message))
                    state.problem(where, f"{message} (topic {topic})")


def _reads_kafka(expression: Expression) -> bool:
    """Whether the expression may see the ``_kafka`` key (conservative: ``@`` and ``*`` count)."""
    text = expression.text
    return "_kafka" in text or "@" in text or "*" in text
