"""The match-and-map stage: rules compiled once into an engine that maps decoded values.

``compile_rules`` turns a loaded file's ``sources`` and ``rules`` into an
:class:`Engine`; ``Engine.map`` gives, for one record, the Vibes bodies of every
matching rule and a :class:`~bridge.errors.MappingError` for each rule that could
not map it (never an exception). Modules by role: ``jmes`` expressions, ``templates``
and ``values`` the value forms, ``conversions`` the ``as:`` options, ``validate`` and
``event_id`` what Vibes requires, ``avro_paths`` the load-time schema check,
``cases`` the mapping unit tests.
"""

from bridge.mapping.avro_paths import unknown_field_paths
from bridge.mapping.cases import Case, CaseOutcome, parse_cases, run_case
from bridge.mapping.compiler import CompiledMapping, compile_rules
from bridge.mapping.engine import (
    CompiledRule,
    DebugData,
    Engine,
    MappedEvent,
    MappingResult,
    RuleFailure,
)
from bridge.mapping.event_id import coordinates_event_id, given_event_id
from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression, reads_kafka
from bridge.mapping.templates import Template, TemplateSyntaxError, parse_template
from bridge.mapping.values import ValueExpression, ValueSpecError, compile_value

__all__ = [
    "Case",
    "CaseOutcome",
    "CompiledMapping",
    "CompiledRule",
    "DebugData",
    "Engine",
    "Expression",
    "ExpressionSyntaxError",
    "MappedEvent",
    "MappingResult",
    "RuleFailure",
    "Template",
    "TemplateSyntaxError",
    "ValueExpression",
    "ValueSpecError",
    "compile_expression",
    "compile_rules",
    "compile_value",
    "coordinates_event_id",
    "given_event_id",
    "parse_cases",
    "parse_template",
    "reads_kafka",
    "run_case",
    "unknown_field_paths",
]
