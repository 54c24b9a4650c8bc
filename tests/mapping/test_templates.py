"""Templates: placeholders, brace escapes, null handling."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.mapping.templates import TemplateSyntaxError, parse_template

# Text without braces, so that the escape rules are the only thing under test.
PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


@given(st.text(max_size=40))
def test_escaped_text_renders_to_itself(text: str) -> None:
    assert parse_template(_escape(text)).render({}) == text


@given(prefix=PLAIN, value=st.text(max_size=20), suffix=PLAIN)
def test_a_placeholder_is_replaced_by_its_value(prefix: str, value: str, suffix: str) -> None:
    template = parse_template(_escape(prefix) + "{id}" + _escape(suffix))
    assert template.render({"id": value}) == prefix + value + suffix


@given(parts=st.lists(st.tuples(PLAIN, st.text(max_size=5)), min_size=1, max_size=4))
def test_many_placeholders_render_in_order(parts: list[tuple[str, str]]) -> None:
    source = "".join(f"{_escape(text)}{{v{index}}}" for index, (text, _) in enumerate(parts))
    document = {f"v{index}": value for index, (_, value) in enumerate(parts)}
    assert parse_template(source).render(document) == "".join(t + v for t, v in parts)


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (2.5, "2.5"), (True, "true"), (False, "false"), ({"a": 1}, '{"a":1}'), ([1], "[1]")],
)
def test_non_strings_render_as_compact_json(value: Any, text: str) -> None:
    assert parse_template("n={v}").render({"v": value}) == f"n={text}"


def test_a_null_placeholder_makes_the_template_null() -> None:
    template = parse_template("shp-{id}-{status}")
    assert template.render({"status": "SHIPPED"}) is None


def test_braces_inside_a_placeholder_belong_to_it() -> None:
    template = parse_template("{ {x: a}.x } and {`{}` == `{}`} and {'}'}")
    assert template.render({"a": "A"}) == "A and true and }"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a}b", "unmatched '}'"),
        ("a{b", "unclosed placeholder"),
        ("{}", "empty placeholder"),
        ("{a..b}", "placeholder at column 1: invalid JMESPath"),
    ],
)
def test_malformed_templates_are_rejected(source: str, message: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=message):
        parse_template(source)
