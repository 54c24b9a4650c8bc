"""JMESPath expressions compiled once into plain Python closures.

Why not just ``jmespath.compile(expr).search``: its tree interpreter walks the AST
dict on every call, which is most of the mapping hot path's cost. The library
still parses every expression (so syntax and error messages are exactly
JMESPath's); we then turn the common node types (field chains, indexes,
comparisons, ``&&``/``||``/``!``, literals, ``@``) into closures, and hand any
other sub-tree to the library's own interpreter. ``tests/mapping/test_jmes.py``
checks with hypothesis that both give the same answers, with one deliberate
difference: a function given null where it needs a value (``length(items)`` when
``items`` is missing) returns null instead of raising, so that a missing field is
handled by ``default``/``required``/``||`` like any other null. A value of the
wrong type (``length(42)``) still fails: that is a mistake, not an absence.

Expressions nested deeper than :data:`MAX_DEPTH` are refused when compiled, so
that no walk over a parsed expression (evaluators, the schema check, the
``_kafka`` check) can exhaust the stack.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Number
from typing import Any, Final, cast

import jmespath
from jmespath import exceptions as jmespath_errors
from jmespath.functions import Functions
from jmespath.visitor import TreeInterpreter

from bridge.records import KAFKA_KEY

Evaluator = Callable[[Any], Any]
Node = dict[str, Any]


class _Interpreter(TreeInterpreter):
    """The library's interpreter, except that a function given null returns null."""

    def visit_function_expression(self, node: Any, value: Any) -> Any:
        try:
            return super().visit_function_expression(node, value)
        except jmespath_errors.JMESPathTypeError as exc:
            if exc.actual_type == "null":
                return None
            raise


# One interpreter serves every fallback: it holds no per-call state.
_INTERPRETER = _Interpreter()

MAX_DEPTH: Final = 100
"""How deeply a parsed expression may nest (operators, brackets, functions)."""


class ExpressionSyntaxError(ValueError):
    """The text is not a JMESPath expression; the message says why."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: its source text, its AST and a fast evaluator."""

    text: str
    ast: Node
    evaluate: Evaluator


def compile_expression(text: str) -> Expression:
    """Parse ``text`` with jmespath and build its evaluator."""
    try:
        ast = cast(Node, jmespath.compile(text).parsed)
    except jmespath_errors.JMESPathError as exc:
        raise ExpressionSyntaxError(_syntax_message(exc)) from None
    except RecursionError:  # the library's parser recurses per nesting level
        raise ExpressionSyntaxError(_too_deep()) from None
    if _depth(ast) > MAX_DEPTH:
        raise ExpressionSyntaxError(_too_deep())
    problem = _function_problem(ast)
    if problem is not None:
        raise ExpressionSyntaxError(problem)
    return Expression(text=text, ast=ast, evaluate=_build(ast))


# jmespath parses any name as a function and only fails when it calls it: checked
# here so that `lenght(items)` is a FILE:LINE problem, not every record's mapping error.
_FUNCTION_TABLE: Final[dict[str, dict[str, Any]]] = Functions.FUNCTION_TABLE


def _arguments(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"


def _function_problem(ast: Node) -> str | None:
    """An unknown function or a wrong number of arguments, said plainly; None when fine."""
    for node in _nodes(ast):
        if node["type"] != "function_expression":
            continue
        name = node["value"]
        entry = _FUNCTION_TABLE.get(name)
        if entry is None:
            close = difflib.get_close_matches(name, _FUNCTION_TABLE, n=1)
            hint = f" (did you mean {close[0]}()?)" if close else ""
            return f"unknown function {name}(){hint}"
        signature = entry["signature"]
        given = len(node["children"])
        if signature and signature[-1].get("variadic"):
            if given < len(signature):
                return f"{name}() takes at least {_arguments(len(signature))}, got {given}"
        elif given != len(signature):
            return f"{name}() takes {_arguments(len(signature))}, got {given}"
    return None


def reads_kafka(expression: Expression) -> bool:
    """Whether the expression may see the record document's ``_kafka`` key.

    Decided on the parsed expression, conservatively: it names a field ``_kafka``
    anywhere, or it takes the whole document (``@``, ``*``, ``[*]``, ``keys(@)``)
    at its root. ``@`` inside a filter or a projection is an element, not the
    document, and a string that merely contains "_kafka" reads nothing.
    """
    if any(
        node["type"] == "field" and node.get("value") == KAFKA_KEY
        for node in _nodes(expression.ast)
    ):
        return True
    at_root: list[Node] = [expression.ast]
    while at_root:
        node = at_root.pop()
        kind = node["type"]
        if kind in ("current", "identity"):
            return True
        if kind in _ROOT_FOR_FIRST_CHILD:
            at_root.append(node["children"][0])
        elif kind in _ROOT_FOR_EVERY_CHILD:
            at_root.extend(child for child in node["children"] if isinstance(child, dict))
        elif kind not in _READ_NOTHING_FROM_ROOT:
            return True  # a node type this walk does not know: assume it reads everything
    return False


# How far the root document reaches into a node: every operand of an operator or a
# function; only the left side of a chain, a projection or a pipe (the rest reads
# what the left side gives).
_ROOT_FOR_EVERY_CHILD: Final = frozenset(
    {
        "and_expression",
        "or_expression",
        "not_expression",
        "comparator",
        "function_expression",
        "multi_select_list",
        "multi_select_dict",
        "key_val_pair",
        "flatten",
    }
)
_ROOT_FOR_FIRST_CHILD: Final = frozenset(
    {
        "subexpression",
        "index_expression",
        "projection",
        "filter_projection",
        "value_projection",
        "pipe",
    }
)
# An expref (&expr) reads the elements of an array argument, which holds the whole
# document only if the document is also read at the root (and caught there).
_READ_NOTHING_FROM_ROOT: Final = frozenset({"field", "literal", "index", "slice", "expref"})


def _nodes(ast: Node) -> list[Node]:
    """Every node of a parsed expression, without recursion."""
    found: list[Node] = []
    pending = [ast]
    while pending:
        node = pending.pop()
        found.append(node)
        pending.extend(child for child in node.get("children", ()) if isinstance(child, dict))
    return found


def _depth(ast: Node) -> int:
    deepest = 0
    pending = [(ast, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            pending.extend(
                (child, depth + 1) for child in node.get("children", ()) if isinstance(child, dict)
            )
    return deepest


def _too_deep() -> str:
    return f"invalid JMESPath expression: it nests more than {MAX_DEPTH} levels deep"


def is_false(value: Any) -> bool:
    """JMESPath falsiness: null, false, and empty strings, arrays and objects (but not 0)."""
    return value is None or value is False or (isinstance(value, str | list | dict) and not value)


def _syntax_message(exc: jmespath_errors.JMESPathError) -> str:
    if isinstance(exc, jmespath_errors.ParseError):
        return f"invalid JMESPath expression: {exc.msg} at column {exc.lex_position}"
    return f"invalid JMESPath expression: {exc}"


def _build(node: Node) -> Evaluator:
    builder = _BUILDERS.get(node["type"])
    if builder is None:
        return _fallback(node)
    return builder(node)


def _fallback(node: Node) -> Evaluator:
    visit = _INTERPRETER.visit
    tree: Any = node  # the library's stubs name a TypedDict for what is a plain dict here

    def evaluate(value: Any) -> Any:
        return visit(tree, value)

    return evaluate


def _field(node: Node) -> Evaluator:
    name = node["value"]

    def evaluate(value: Any) -> Any:
        return value.get(name) if isinstance(value, dict) else None

    return evaluate


def _field_chain(names: list[str]) -> Evaluator:
    """``a.b.c``: the most common expression, as one loop without nested calls."""
    first, *rest = names

    def evaluate(value: Any) -> Any:
        if not isinstance(value, dict):
            return None
        value = value.get(first)
        for name in rest:
            if not isinstance(value, dict):
                return None
            value = value.get(name)
        return value

    return evaluate


def _chain(node: Node) -> Evaluator:
    children: list[Node] = node["children"]
    if all(child["type"] == "field" for child in children):
        return _field_chain([child["value"] for child in children])
    steps = [_build(child) for child in children]

    def evaluate(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return evaluate


def _index(node: Node) -> Evaluator:
    position: int = node["value"]

    def evaluate(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return evaluate


def _literal(node: Node) -> Evaluator:
    constant = node["value"]
    return lambda _value: constant


def _current(_node: Node) -> Evaluator:
    return lambda value: value


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _equals(left: Any, right: Any) -> bool:
    # JMESPath keeps booleans and numbers apart: 1 == true is false, unlike Python.
    if isinstance(left, bool) != isinstance(right, bool) and (
        _is_number(left) or _is_number(right)
    ):
        return False
    return bool(left == right)


_ORDERING = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}


def _comparator(node: Node) -> Evaluator:
    left_of = _build(node["children"][0])
    right_of = _build(node["children"][1])
    kind: str = node["value"]
    if kind in ("eq", "ne"):
        negate = kind == "ne"
        text = _string_literal(node["children"][1])
        if text is not None:
            # field == 'text', the usual predicate: plain equality is exact for strings.
            if negate:
                return lambda value: left_of(value) != text
            return lambda value: left_of(value) == text

        def equality(value: Any) -> Any:
            return _equals(left_of(value), right_of(value)) != negate

        return equality
    compare = _ORDERING[kind]

    def ordering(value: Any) -> Any:
        left, right = left_of(value), right_of(value)
        # As the library: ordering is defined on numbers and (leniently) strings only.
        if not (_is_number(left) or isinstance(left, str)):
            return None
        if not (_is_number(right) or isinstance(right, str)):
            return None
        return compare(left, right)

    return ordering


def _string_literal(node: Node) -> str | None:
    if node["type"] == "literal" and isinstance(node["value"], str):
        return str(node["value"])
    return None


def _function(node: Node) -> Evaluator:
    """``length(x)`` runs inline; other functions, and length's type errors, go to the library."""
    slow = _fallback(node)
    if node["value"] != "length" or len(node["children"]) != 1:
        return slow
    argument_of = _build(node["children"][0])

    def length(value: Any) -> Any:
        argument = argument_of(value)
        if isinstance(argument, str | list | dict):
            return len(argument)
        return slow(value)  # null, or the library's JMESPathTypeError

    return length


def _and(node: Node) -> Evaluator:
    left_of = _build(node["children"][0])
    right_of = _build(node["children"][1])

    def evaluate(value: Any) -> Any:
        left = left_of(value)
        return left if is_false(left) else right_of(value)

    return evaluate


def _or(node: Node) -> Evaluator:
    left_of = _build(node["children"][0])
    right_of = _build(node["children"][1])

    def evaluate(value: Any) -> Any:
        left = left_of(value)
        return right_of(value) if is_false(left) else left

    return evaluate


def _not(node: Node) -> Evaluator:
    operand_of = _build(node["children"][0])

    def evaluate(value: Any) -> Any:
        operand = operand_of(value)
        if _is_number(operand) and operand == 0:
            return False  # JMESPath: 0 is truthy, so !0 is false
        return not operand

    return evaluate


_BUILDERS: dict[str, Callable[[Node], Evaluator]] = {
    "field": _field,
    "subexpression": _chain,
    "index_expression": _chain,
    "index": _index,
    "literal": _literal,
    "current": _current,
    "comparator": _comparator,
    "and_expression": _and,
    "or_expression": _or,
    "not_expression": _not,
    "function_expression": _function,
}
