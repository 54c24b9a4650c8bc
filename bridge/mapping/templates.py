"""``{template: "text {EXPR} text"}``: parsing once, rendering per record.

Hand-written because no template library uses JMESPath for its placeholders and
keeps the ``{{`` / ``}}`` escapes of the spec. A placeholder runs to its matching
``}``: braces nested inside it (a multi-select hash) and braces inside quoted
JMESPath strings or literals do not end it.

Rendering rule: a placeholder that evaluates to null makes the whole template
null (so ``default`` / ``required`` apply). Rendering "shp--SHIPPED" for a missing
id would instead produce colliding event ids and messages with holes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression

_QUOTES = {"'", '"', "`"}


class TemplateSyntaxError(ValueError):
    """The template text is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Template:
    """Literal text and compiled placeholders, alternating (text first and last).

    ``render(document)`` gives the filled-in string, or None when any placeholder is
    null. It is built once per template, with a short form for the usual one or two
    placeholders (no list, no join).
    """

    text: str
    literals: tuple[str, ...]
    expressions: tuple[Expression, ...]
    render: Callable[[Any], str | None]


def _renderer(
    literals: tuple[str, ...], expressions: tuple[Expression, ...]
) -> Callable[[Any], str | None]:
    if not expressions:
        constant = literals[0]
        return lambda _document: constant
    if len(expressions) == 1:
        head, tail = literals
        evaluate = expressions[0].evaluate

        def render_one(document: Any) -> str | None:
            value = evaluate(document)
            if value is None:
                return None
            return head + (value if isinstance(value, str) else render_scalar(value)) + tail

        return render_one

    def render_many(document: Any) -> str | None:
        parts = [literals[0]]
        for index, expression in enumerate(expressions):
            value = expression.evaluate(document)
            if value is None:
                return None
            parts.append(value if isinstance(value, str) else render_scalar(value))
            parts.append(literals[index + 1])
        return "".join(parts)

    return render_many


def render_scalar(value: Any) -> str:
    """How a non-string value reads inside text: its compact JSON form (true, 3, 2.5, {...})."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # also beyond 64 bits, where orjson refuses
    return orjson.dumps(value).decode()


def parse_template(text: str) -> Template:
    """Split ``text`` into literals and compiled placeholders."""
    literals: list[str] = []
    expressions: list[Expression] = []
    current: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if text.startswith("{{", position) or text.startswith("}}", position):
            current.append(char)
            position += 2
        elif char == "}":
            raise TemplateSyntaxError(
                f"unmatched '}}' at column {position + 1} (write '}}}}' for a literal brace)"
            )
        elif char == "{":
            end = _placeholder_end(text, position)
            source = text[position + 1 : end].strip()
            if not source:
                raise TemplateSyntaxError(f"empty placeholder at column {position + 1}")
            try:
                expressions.append(compile_expression(source))
            except ExpressionSyntaxError as exc:
                raise TemplateSyntaxError(f"placeholder at column {position + 1}: {exc}") from None
            literals.append("".join(current))
            current = []
            position = end + 1
        else:
            current.append(char)
            position += 1
    literals.append("".join(current))
    frozen_literals, frozen_expressions = tuple(literals), tuple(expressions)
    return Template(
        text, frozen_literals, frozen_expressions, _renderer(frozen_literals, frozen_expressions)
    )


def _placeholder_end(text: str, start: int) -> int:
    """Index of the ``}`` closing the placeholder opened at ``start``."""
    depth = 0
    quote: str | None = None
    position = start + 1
    while position < len(text):
        char = text[position]
        if quote is not None:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = None
        elif char in _QUOTES:
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return position
            depth -= 1
        position += 1
    raise TemplateSyntaxError(
        f"unclosed placeholder opened at column {start + 1} (write '{{{{' for a literal brace)"
    )
