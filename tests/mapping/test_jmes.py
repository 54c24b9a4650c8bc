"""The compiled JMESPath evaluators must answer exactly as the jmespath library does."""

from __future__ import annotations

import re
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathTypeError
from jmespath.visitor import TreeInterpreter

from bridge.mapping.jmes import (
    MAX_DEPTH,
    ExpressionSyntaxError,
    compile_expression,
    is_false,
    reads_kafka,
)

NAMES = st.sampled_from(["a", "b", "c", "status"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=False, allow_infinity=False, width=16),
    st.sampled_from(["", "x", "SHIPPED", "0"]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(NAMES, children, max_size=4)
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(NAMES, JSON, max_size=4)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value + "'"
    return "`" + jmespath_json(value) + "`"


def jmespath_json(value: Any) -> str:
    import json

    return json.dumps(value)


PATHS = st.lists(NAMES, min_size=1, max_size=3).map(".".join)
INDEXED = st.tuples(PATHS, st.integers(min_value=-2, max_value=2)).map(lambda p: f"{p[0]}[{p[1]}]")
OPERANDS = st.one_of(PATHS, INDEXED, SCALARS.map(_literal), st.just("@"))


def _expressions() -> st.SearchStrategy[str]:
    comparator = st.tuples(
        OPERANDS, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), OPERANDS
    ).map(" ".join)
    return st.recursive(
        st.one_of(OPERANDS, comparator),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
                lambda t: f"({t[0]}) {t[1]} ({t[2]})"
            ),
            inner.map(lambda e: f"!({e})"),
            inner.map(lambda e: f"length({e})"),
        ),
        max_leaves=5,
    )


class _Reference(TreeInterpreter):
    """The library, with the one deliberate difference: a function given null
    (a missing field) returns null, so that default/required apply."""

    def visit_function_expression(self, node: Any, value: Any) -> Any:
        try:
            return super().visit_function_expression(node, value)
        except JMESPathTypeError as exc:
            if exc.actual_type == "null":
                return None
            raise


def _reference(expression: str, document: Any) -> Any:
    return _Reference().visit(jmespath.compile(expression).parsed, document)


def _outcome(function: Any) -> tuple[str, Any]:
    try:
        result = function()
    except Exception as exc:  # the library itself raises on some comparisons: so must we
        return ("raised", type(exc).__name__)
    return ("value", (type(result).__name__, result))


@settings(max_examples=600, deadline=None)
@given(expression=_expressions(), document=DOCUMENTS)
def test_compiled_expressions_agree_with_the_library(expression: str, document: Any) -> None:
    compiled = compile_expression(expression)
    expected = _outcome(lambda: _reference(expression, document))
    assert _outcome(lambda: compiled.evaluate(document)) == expected


@pytest.mark.parametrize(
    "expression",
    ["length(items)", "items[*].sku", "items[?qty > `1`].sku | [0]", "keys(@)", "a.b[1:2]"],
)
def test_other_node_types_fall_back_to_the_library(expression: str) -> None:
    document = {"items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 1}], "a": {"b": [1, 2, 3]}}
    assert compile_expression(expression).evaluate(document) == jmespath.search(
        expression, document
    )


@pytest.mark.parametrize("text", ["a..b", "a[", "'unclosed", "==", ""])
def test_syntax_errors_are_reported(text: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match="invalid JMESPath expression"):
        compile_expression(text)


@pytest.mark.parametrize(
    ("value", "falsy"),
    [(None, True), (False, True), ("", True), ([], True), ({}, True), (0, False), ("0", False)],
)
def test_falsiness_follows_jmespath(value: Any, falsy: bool) -> None:
    assert is_false(value) is falsy


@pytest.mark.parametrize(
    ("expression", "document"),
    [
        ("length(items)", {}),
        ("length(items)", {"items": None}),
        ("length(a.b.c)", {"a": {}}),
        ("join(', ', tags)", {}),
        ("length(items) > `2`", {}),
        ("to_number(missing)", {}),  # to_number accepts null itself: null, not an error
        ("abs(n)", {}),
    ],
)
def test_a_function_given_a_missing_value_gives_null(expression: str, document: Any) -> None:
    assert compile_expression(expression).evaluate(document) is None


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("length(items) || `0`", 0),
        ("not_null(length(items), `-1`)", -1),
        ("length(items) > `0` || status == 'x'", True),
        ("[length(items), length(name)]", [None, 4]),
        ("length(items[?qty > `1`])", None),
        ("orders[*].length(lines)", [2]),  # per element; a projection drops nulls
    ],
)
def test_null_from_a_function_is_an_ordinary_null_for_the_rest(
    expression: str, expected: Any
) -> None:
    document = {"status": "x", "name": "abcd", "orders": [{"lines": [1, 2]}, {}]}
    assert compile_expression(expression).evaluate(document) == expected


@pytest.mark.parametrize(
    ("expression", "document"),
    [("length(n)", {"n": 42}), ("abs(s)", {"s": "x"}), ("join(', ', tags)", {"tags": [1]})],
)
def test_a_function_given_the_wrong_type_still_fails(expression: str, document: Any) -> None:
    with pytest.raises(JMESPathTypeError):
        compile_expression(expression).evaluate(document)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 500 + "a" + ")" * 500,  # the library's parser runs out of stack
        "!" * 1_000 + "a",
        " || ".join(["a"] * (MAX_DEPTH + 1)),  # flat text, but a deep tree
        "[" * 300 + "a" + "]" * 300,
        "length(" * 200 + "a" + ")" * 200,
    ],
)
def test_deeply_nested_expressions_are_refused_as_syntax_errors(text: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match="nests more than"):
        compile_expression(text)


def test_an_expression_just_within_the_depth_limit_compiles() -> None:
    text = " || ".join(["a"] * (MAX_DEPTH // 2))
    assert compile_expression(text).evaluate({"a": 1}) == 1


@pytest.mark.parametrize(
    ("expression", "reads"),
    [
        ("_kafka.key", True),
        ('"_kafka".headers.trace', True),
        ("a._kafka", True),  # conservative: any field of that name
        ("sort_by(items, &_kafka)", True),
        ("@", True),
        ("to_string(@)", True),
        ("keys(@)", True),
        ("*", True),
        ("*.x", True),
        ("[*]", True),
        ("{a: @}", True),
        ("[a, @]", True),
        ("a || @", True),
        ("@.customer.id", True),
        ("customer.id", False),
        ("items[*].sku", False),  # * over items, not over the document
        ("items[?@ > `1`]", False),  # @ is an element there
        ("items[?sku == '_kafka'].sku", False),
        ("'_kafka'", False),  # a string, not a read
        ("length(items)", False),
        ("items | [0]", False),
        ("customer | @.id", False),  # @ is customer there
        ("{k: customer.id}", False),
        ('`{"_kafka": 1}`', False),
    ],
)
def test_reading_kafka_is_decided_on_the_parsed_expression(expression: str, reads: bool) -> None:
    assert reads_kafka(compile_expression(expression)) is reads


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lenght(items)", "unknown function lenght() (did you mean length()?)"),
        ("frobnicate(a)", "unknown function frobnicate()"),
        ("length(a, b)", "length() takes 1 argument, got 2"),
        ("max_by(a)", "max_by() takes 2 arguments, got 1"),
        ("not_null()", "not_null() takes at least 1 argument, got 0"),
        ("items[?contains(tags)]", "contains() takes 2 arguments, got 1"),
    ],
)
def test_unknown_functions_and_wrong_arity_are_refused_when_compiled(
    text: str, message: str
) -> None:
    """jmespath itself only fails when a record calls them: every record would fail."""
    with pytest.raises(ExpressionSyntaxError, match=re.escape(message)):
        compile_expression(text)


@pytest.mark.parametrize(
    "text", ["not_null(a, b, c)", "sort_by(items, &name)", "join(`,`, names)", "length(@)"]
)
def test_known_functions_with_the_right_arity_compile(text: str) -> None:
    compile_expression(text)
