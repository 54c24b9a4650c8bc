"""Value expressions (``event_id``, ``recipient.*``, ``event_data.*``, ``debug_data.*``).

Compiled once from the YAML forms of spec section 1 into one closure per field:
evaluate, fall back to ``default``, convert with ``as``, enforce ``required``.

One more form, for ``debug_data`` only: ``{trace: trace_id}`` or
``{trace: traceparent}``, the record's trace (docs/tracing.md). It is not a
function of the record's value, so it evaluates to nothing here; the engine
writes the record's :class:`~bridge.records.TraceIds` into it, and leaves it out
when tracing is off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.errors import MappingCode, MappingError
from bridge.mapping.conversions import CONVERSIONS, ConversionError, converter_for, is_known_region
from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression
from bridge.mapping.templates import TemplateSyntaxError, parse_template

_FORMS = ("path", "template", "value")
TRACE_FORM = "trace"
TRACE_SECTION = "debug_data"
TRACE_VALUES = ("trace_id", "traceparent")
"""What ``{trace: ...}`` may name: the fields of :class:`~bridge.records.TraceIds`."""
_OPTIONS = ("default", "required", "as", "region")


class ValueSpecError(ValueError):
    """A value expression is written wrongly; ``key`` is the sub-key at fault, if any."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ValueExpression:
    """One compiled field: ``evaluate(document)`` gives its value or None (leave it out).

    ``key`` is the name written into the event; ``field`` names it in messages
    (``event_data.first_name``).
    """

    key: str
    field: str
    expressions: tuple[Expression, ...]
    evaluate: Callable[[Any], Any]
    # The ``as:`` of a ``path`` value, so that the load-time check can refuse a path
    # whose schema type the conversion never takes (a record ``as: integer``).
    conversion: str | None = None
    # ``{trace: ...}``: which of the record's TraceIds the engine writes here.
    trace: str | None = None


def compile_value(section: str, key: str, spec: Any) -> ValueExpression:
    """Compile the YAML ``spec`` written at ``section.key`` (``key`` empty for event_id)."""
    field = f"{section}.{key}" if key else section
    if isinstance(spec, str):
        expression = _expression(spec, None)
        return ValueExpression(key, field, (expression,), expression.evaluate)
    if not isinstance(spec, dict):
        raise ValueSpecError(
            "a value is a JMESPath string or a map with one of path, template, value"
            f" (for a constant write {{value: {spec!r}}})"
        )
    if TRACE_FORM in spec:
        return _trace(key, field, section, spec)
    forms = [form for form in _FORMS if form in spec]
    unknown = sorted(set(spec) - set(_FORMS) - set(_OPTIONS))
    if unknown:
        raise ValueSpecError(f"unknown key {unknown[0]!r} in a value expression", unknown[0])
    if len(forms) != 1:
        raise ValueSpecError("a value map needs exactly one of path, template, value")
    return _compile_long_form(key, field, forms[0], spec)


def _compile_long_form(key: str, field: str, form: str, spec: dict[str, Any]) -> ValueExpression:
    if not isinstance(spec.get("required", False), bool):
        raise ValueSpecError("required must be true or false", "required")
    raw_source = spec[form]
    expressions: tuple[Expression, ...] = ()
    produce: Callable[[Any], Any]
    if form == "path":
        if not isinstance(raw_source, str):
            raise ValueSpecError("path must be a JMESPath string", form)
        expression = _expression(raw_source, form)
        expressions, produce = (expression,), expression.evaluate
    elif form == "template":
        if not isinstance(raw_source, str):
            raise ValueSpecError("template must be a string", form)
        try:
            template = parse_template(raw_source)
        except TemplateSyntaxError as exc:
            raise ValueSpecError(f"invalid template: {exc}", form) from None
        expressions, produce = template.expressions, template.render
    else:
        return _constant(key, field, spec)
    convert = _converter(spec)
    default = spec.get("default")
    required: bool = spec.get("required", False)
    if default is not None and convert is not None:
        try:
            default = convert(default)
        except ConversionError as exc:
            raise ValueSpecError(f"the default cannot be converted: {exc}", "default") from None
    _check_encodable(default, "default")
    return ValueExpression(
        key,
        field,
        expressions,
        _finish(field, produce, default, convert, required),
        spec.get("as") if form == "path" else None,
    )


def _trace(key: str, field: str, section: str, spec: dict[str, Any]) -> ValueExpression:
    """``{trace: trace_id | traceparent}``: filled in by the engine, never from the record."""
    if section != TRACE_SECTION:
        raise ValueSpecError("trace is for debug_data only", TRACE_FORM)
    if len(spec) != 1:
        other = sorted(name for name in spec if name != TRACE_FORM)[0]
        raise ValueSpecError("trace takes no other key", other)
    which = spec[TRACE_FORM]
    if which not in TRACE_VALUES:
        raise ValueSpecError(f"trace must be one of {', '.join(TRACE_VALUES)}", TRACE_FORM)
    return ValueExpression(key, field, (), lambda _document: None, trace=which)


def _constant(key: str, field: str, spec: dict[str, Any]) -> ValueExpression:
    """``{value: ...}``: converted once, here: records pay nothing, a bad one fails at load."""
    constant = spec["value"]
    if constant is None:
        constant = spec.get("default")
    convert = _converter(spec)
    if constant is not None and convert is not None:
        try:
            constant = convert(constant)
        except ConversionError as exc:
            raise ValueSpecError(f"the value cannot be converted: {exc}", "value") from None
    if constant is None and spec.get("required", False):
        raise ValueSpecError("a required value cannot be null", "value")
    _check_encodable(constant, "value")
    return ValueExpression(key, field, (), lambda _document: constant)


def _check_encodable(constant: Any, key: str) -> None:
    """A constant goes into every body: one that JSON cannot carry (an integer beyond
    64 bits, nesting deeper than 254 levels) would fail every record, so refuse it now."""
    try:
        orjson.dumps(constant)
    except orjson.JSONEncodeError as exc:
        raise ValueSpecError(f"the {key} cannot be sent as JSON ({exc})", key) from None


def _converter(spec: dict[str, Any]) -> Callable[[Any], Any] | None:
    name = spec.get("as")
    region = spec.get("region")
    if region is not None:
        if name != "e164":
            raise ValueSpecError("region applies only to as: e164", "region")
        if not isinstance(region, str) or not is_known_region(region):
            raise ValueSpecError("region must be a two-letter country code such as US", "region")
        region = region.upper()
    if name is None:
        return None
    if name not in CONVERSIONS:
        raise ValueSpecError(f"as must be one of {', '.join(CONVERSIONS)}", "as")
    return converter_for(name, region)


def _finish(
    field: str,
    produce: Callable[[Any], Any],
    default: Any,
    convert: Callable[[Any], Any] | None,
    required: bool,
) -> Callable[[Any], Any]:
    """Fold default, conversion and required into one closure, keeping the common case lean."""
    if convert is None and default is None and not required:
        return produce

    def evaluate(document: Any) -> Any:
        value = produce(document)
        if value is None:
            if default is not None:
                return default
            if required:
                raise MappingError(
                    MappingCode.REQUIRED_VALUE_MISSING, f"{field}: required, but the value is null"
                )
            return None
        if convert is None:
            return value
        try:
            return convert(value)
        except ConversionError as exc:
            raise MappingError(exc.code, f"{field}: {exc}") from None

    return evaluate


def _expression(text: str, key: str | None) -> Expression:
    try:
        return compile_expression(text)
    except ExpressionSyntaxError as exc:
        raise ValueSpecError(str(exc), key) from None
