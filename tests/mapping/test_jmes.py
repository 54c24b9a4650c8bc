"""The compiled JMESPath evaluators must answer exactly as the jmespath library does."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mapping.jmes import ExpressionSyntaxError, compile_expression, is_false

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
    expected = _outcome(lambda: jmespath.search(expression, document))
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
