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

from dataclasses import dataclass
from typing import Any

import orjson

from bridge.mapping.jmes import Expression, ExpressionSyntaxError, compile_expression

_QUOTES = {"'", '"', "`"}


class TemplateSyntaxError(ValueError):
    """The template text is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class Template:
    """Literal text and compiled placeholders, alternating (text first and last)."""

    text: str
    literals: tuple[str, ...]
    expressions: tuple[Expression, ...]

    def render(self, document: Any) -> str | None:
        """The filled-in string, or None when any placeholder is null."""
        literals = self.literals
        parts = [literals[0]]
        for index, expression in enumerate(self.expressions):
            value = expression.evaluate(document)
            if value is None:
                return None
            parts.append(value if isinstance(value, str) else render_scalar(value))
            parts.append(literals[index + 1])
        return "".join(parts)


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
    return Template(text=text, literals=tuple(literals), expressions=tuple(expressions))


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
