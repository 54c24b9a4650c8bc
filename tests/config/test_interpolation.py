"""``${NAME}`` references: strict syntax, shell semantics for ``:-``, values never echoed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config.interpolation import EnvValue, interpolate
from bridge.config.redaction import redact
from bridge.errors import ConfigError, Problem
from bridge.loading import load_bridge
from tests.support.configs import HEADER, WriteConfig

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)
SECRET = "S3cr3t-PW"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A}", {"A": "x"}, "x"),
        ("a-${A}-b", {"A": "x"}, "a-x-b"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),  # set but empty: the default, as in shells and Compose
        ("${A}", {"A": ""}, ""),
        ("${A:-}", {}, ""),
        ("${A:-a:b-c}", {}, "a:b-c"),
        ("$${A}", {"A": "x"}, "${A}"),
        ("cost $5 and $$5", {}, "cost $5 and $$5"),
        ("$", {}, "$"),
        ("${A}${B}", {"A": "1", "B": "2"}, "12"),
        ("${_a9}", {"_a9": "ok"}, "ok"),
    ],
)
def test_references_are_replaced(text: str, env: dict[str, str], expected: str) -> None:
    result = interpolate(text, env)
    assert result.errors == ()
    assert result.text == expected


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("${UNSET:-${Y}}", "cannot hold another ${...}"),
        ("${Y", "unclosed ${"),
        ("prefix ${Y and more", "unclosed ${"),
        ("${UNSET-dflt}", "${UNSET-...} is not supported: write ${UNSET:-default}"),
        ("${A:?msg}", "${A:?...} is not supported"),
        ("${A:+alt}", "${A:+...} is not supported"),
        ("${A=x}", "${A=...} is not supported"),
        ("${}", "empty variable name"),
        ("${1X}", "invalid variable name in ${1X}"),
        ("${A B}", "invalid reference ${A B}"),
        ("${-}", "invalid variable name"),
        ("${UNSET}", "environment variable UNSET is not set and has no default"),
    ],
)
def test_malformed_or_unset_references_are_errors(text: str, wanted: str) -> None:
    result = interpolate(text, {"Y": "y", "A": "a"})
    assert any(wanted in error for error in result.errors), result.errors


def test_only_environment_values_are_remembered_not_defaults() -> None:
    result = interpolate("${A}-${B:-b}-${C:-c}", {"A": "secret", "C": ""})
    assert result.env_values == (EnvValue("A", "secret"),)
    assert result.variables == ("A", "B", "C")


@pytest.mark.parametrize(
    "text",
    ["${UNSET:-${Y}}", "${Y", "${UNSET-dflt}", "${}", "${1X}", "a ${UNSET:-x} ${Y"],
)
def test_malformed_references_are_load_errors_at_their_line(
    write_config: WriteConfig, text: str
) -> None:
    header = HEADER.replace("group_id", "") + f"kafka:\n  group_id: '{text}'\n"
    path = write_config(RULE, header=header)
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, {"Y": "y"})
    assert [problem.line for problem in caught.value.problems] == [HEADER.count("\n") + 2]


def test_a_literal_dollar_brace_loads(write_config: WriteConfig) -> None:
    header = HEADER + "kafka:\n  group_id: 'g-$${NOT_A_VAR}'\n"
    loaded = load_bridge(write_config(RULE, header=header), {})
    assert loaded.settings.kafka.group_id == "g-${NOT_A_VAR}"


def test_an_empty_variable_takes_the_default_when_loading(write_config: WriteConfig) -> None:
    header = HEADER + "kafka:\n  group_id: ${GROUP:-fallback}\n"
    loaded = load_bridge(write_config(RULE, header=header), {"GROUP": ""})
    assert loaded.settings.kafka.group_id == "fallback"


# Each setting below gets SECRET from the environment, which it refuses: the message must
# name the variable and the problem, never the value, whatever check produced it.
INVALID_FROM_ENV = [
    ("delivery:\n  max_retry_duration: ${V}\n", "invalid duration"),  # duration
    ("delivery:\n  max_in_flight: ${V}\n", "valid integer"),  # integer
    ("vibes_extra:\n  x: ${V}\n", "unknown key"),  # unknown key, value not used
    ("management:\n  port: ${V}\n", "valid integer"),
    ("x-ok: 1\ndelivery:\n  shutdown_timeout_seconds: ${V}\n", "valid number"),  # number
    ("dead_letter:\n  topic: ${V}\n  extra: 1\n", "unknown key"),
]


@pytest.mark.parametrize(("setting", "wanted"), INVALID_FROM_ENV)
def test_a_refused_value_from_the_environment_is_never_quoted(
    write_config: WriteConfig, setting: str, wanted: str
) -> None:
    messages = _messages(write_config(RULE + setting), {"V": SECRET})
    assert any(wanted in message for message in messages), messages
    assert all(SECRET not in message for message in messages), messages


@pytest.mark.parametrize(
    ("place", "value"),
    [
        ("company_key: acme\n  base_url: ${V}", "ftp://S3cr3t-host"),  # URL
        ("company_key: acme\n  requests_per_second: ${V}", SECRET),  # float
        ("company_key: acme\n  api_version: [${V}]", SECRET),  # type error with the value inside
        ("company_key: ${V}\n  timeout_seconds: ${V}", SECRET),  # the same variable twice
    ],
)
def test_vibes_settings_from_the_environment_are_never_quoted(
    write_config: WriteConfig, place: str, value: str
) -> None:
    header = HEADER.replace("company_key: acme", place)
    messages = _messages(write_config(RULE, header=header), {"V": value})
    assert messages
    assert all(value not in message for message in messages), messages


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("format: ${V}", SECRET),  # enum (a source)
        ("event_type: ${V}", "S3cr3t PW"),  # the compiler's literal check quotes it
        ("when: ${V}", "S3cr3t-PW =="),  # a JMESPath syntax error
        ("topic: [shop.orders, '${V}']", SECRET),  # a topic without a source
        ("event_data: {a: {value: x, as: '${V}'}}", SECRET),  # an option's enum
        ("event_data: {a: {template: '${V}'}}", "{S3cr3t-PW"),  # a template error
        ("event_data: {a: {value: '${V}', as: integer}}", SECRET),  # a constant's conversion
    ],
)
def test_rule_and_source_values_from_the_environment_are_never_quoted(
    write_config: WriteConfig, rule: str, value: str
) -> None:
    rules = (
        "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        "    recipient: {external_person_id: id}\n"
    )
    key = rule.split(":", 1)[0]
    if key == "format":
        header = HEADER.replace("format: json", "format: ${V}", 1)
        path = write_config(rules, header=header)
    else:
        rules = "\n".join(line for line in rules.splitlines() if f"{key}:" not in line) + "\n"
        path = write_config(rules + f"    {rule}\n")
    messages = _messages(path, {"V": value})
    assert messages
    assert all(value not in message for message in messages), messages
    assert all(part not in message for part in value.split() for message in messages)


def test_the_message_names_the_variable(write_config: WriteConfig) -> None:
    path = write_config(RULE + "delivery:\n  max_retry_duration: ${RETRY_FOR}\n")
    [message] = _messages(path, {"RETRY_FOR": SECRET})
    assert "invalid duration ${RETRY_FOR}" in message
    assert "the value comes from RETRY_FOR and is not shown" in message


@pytest.mark.parametrize(
    ("message", "value", "expected"),
    [
        ("bad 'abc-secret' here", "abc-secret", "bad ${V} here"),
        ('bad "abc-secret"', "abc-secret", "bad ${V}"),
        ("bad 'it\\'s \"x\"'", 'it\'s "x"', "bad ${V}"),  # repr escapes one quote
        ("bad 'a\\\\b-long'", "a\\b-long", "bad ${V}"),  # repr doubles the backslash
        ("prefix-abc-secret-suffix", "abc-secret", "prefix-${V}-suffix"),
        ("rules[1]: got 1", "1", "rules[${V}]: got ${V}"),  # short: only where it stands alone
        ("value10 is 1x", "1", "value10 is 1x"),
    ],
)
def test_redaction_finds_every_spelling(message: str, value: str, expected: str) -> None:
    assert redact(message, [EnvValue("V", value)]) == expected


def _messages(path: Path, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, environ)
    problems: list[Problem] = [*caught.value.problems, *caught.value.warnings]
    return [str(problem) for problem in problems]
