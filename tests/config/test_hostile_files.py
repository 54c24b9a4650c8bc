"""Files a hostile or careless user may write: each a FILE:LINE problem, never a traceback."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from bridge.config import load_yaml
from bridge.config.yaml_source import MAX_ALIAS_NODES, MAX_DEPTH
from bridge.errors import ConfigError, Problem
from bridge.loading import load_bridge
from tests.support.configs import HEADER, WriteConfig

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)
FIRST_FREE_LINE = HEADER.count("\n") + RULE.count("\n") + 1  # after the header and RULE


def _problems(path: Path, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, environ or {})
    return caught.value.problems


def _one_problem(path: Path) -> Problem:
    [problem] = _problems(path)
    return problem


@pytest.mark.parametrize(
    "duration",
    ["9999999999d", "99999999999999999999999ms", "1" * 400 + "h", "1000000000d", "9" * 30 + "s"],
)
def test_a_duration_too_large_to_represent_is_a_problem_at_its_line(
    write_config: WriteConfig, duration: str
) -> None:
    path = write_config(RULE + f"delivery:\n  max_retry_duration: {duration}\n")
    problem = _one_problem(path)
    assert problem.line == FIRST_FREE_LINE + 1
    assert "max_retry_duration: the duration is too large" in problem.message
    assert duration not in problem.message


def test_the_largest_duration_still_loads(write_config: WriteConfig) -> None:
    path = write_config(RULE + "delivery:\n  max_event_age: 999999999d\n")
    assert load_bridge(path, {}).settings.delivery.max_event_age is not None


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 2000])
@pytest.mark.parametrize("shape", ["flow-list", "flow-map", "block-map", "block-list"])
def test_deep_nesting_is_refused_at_its_line(
    write_config: WriteConfig, shape: str, depth: int
) -> None:
    deep = _nested(shape, depth)
    path = write_config(RULE + "x-deep:" + deep)
    problem = _one_problem(path)
    assert f"nested more than {MAX_DEPTH} levels deep" in problem.message
    assert problem.line is not None
    assert problem.line >= FIRST_FREE_LINE


def test_nesting_up_to_the_limit_loads(write_config: WriteConfig) -> None:
    path = write_config(RULE + "x-deep:" + _nested("block-map", MAX_DEPTH - 2))
    load_bridge(path, {})


def test_deep_nesting_in_a_cases_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.yaml"
    path.write_text("cases:\n  - record:\n      value: " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(ConfigError) as caught:
        load_yaml(path, interpolate=False)
    [problem] = caught.value.problems
    assert problem.line == 3
    assert "nested more than" in problem.message


def _nested(shape: str, depth: int) -> str:
    if shape == "flow-list":
        return " " + "[" * depth + "]" * depth + "\n"
    if shape == "flow-map":
        return " " + "{a: " * depth + "1" + "}" * depth + "\n"
    if shape == "block-map":
        return (
            "\n" + "".join("  " * i + " a:\n" for i in range(1, depth)) + "  " * depth + " b: 1\n"
        )
    return "\n" + "".join("  " * i + " -\n" for i in range(1, depth)) + "  " * depth + " - 1\n"


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("!foo [a, b]", "!foo"),
        ("!bar {a: 1}", "!bar"),
        ("!!omap [{a: 1}, {b: 2}]", "!!omap"),
        ("!!set {a, b}", "!!set"),
        ("!!pairs [{a: 1}, {a: 2}]", "!!pairs"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!weird text", "!weird"),
    ],
)
def test_tags_on_maps_lists_and_scalars_are_refused(
    write_config: WriteConfig, value: str, tag: str
) -> None:
    rules = (
        "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        "    recipient: {external_person_id: id}\n"
        f"    event_data:\n      a: {{value: {value}}}\n"
    )
    problem = _one_problem(write_config(rules))
    assert problem.line == HEADER.count("\n") + 7
    assert f"custom tags are not allowed ({tag})" in problem.message


def test_standard_map_and_list_tags_are_plain(write_config: WriteConfig) -> None:
    rules = RULE.replace("recipient:", "event_data: !!map {a: {value: !!seq [x]}}, recipient:")
    load_bridge(write_config(rules), {})


def _alias_bomb(levels: int, width: int = 10) -> str:
    lines = ["x-a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"x-a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 7, 9])
def test_an_alias_bomb_is_refused_quickly_and_cheaply(
    write_config: WriteConfig, levels: int
) -> None:
    bomb = _alias_bomb(levels)
    assert len(bomb) < 1500  # about 1 KB that would expand to 10^levels values
    path = write_config(RULE + bomb)
    tracemalloc.start()
    started = time.monotonic()
    try:
        problem = _one_problem(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert f"expand to more than {MAX_ALIAS_NODES:,} values" in problem.message
    assert problem.line is not None
    assert problem.line > FIRST_FREE_LINE
    # Generous bounds: this checks "stops early", not speed (the unbounded copy took a minute
    # and 2.4 GB); 10^levels values would need far more than this.
    assert peak < 200_000_000, peak
    assert time.monotonic() - started < 60


def test_aliases_and_merges_within_the_limit_load(write_config: WriteConfig) -> None:
    anchors = "x-r: &recipient {external_person_id: id}\n"
    rules = "rules:\n" + "".join(
        f"  - {{name: r{index}, topic: shop.orders, event_type: t, recipient: *recipient}}\n"
        for index in range(200)
    )
    loaded = load_bridge(write_config(anchors + rules), {})
    assert len(loaded.settings.rules) == 200


@pytest.mark.parametrize(
    ("key", "shown"),
    [("true", '"true"'), ("null", '"null"'), ("1", '"1"'), ("1.5", '"1.5"'), ("~", '"null"')],
)
@pytest.mark.parametrize("section", ["event_data", "recipient", "debug_data"])
def test_keys_that_are_not_text_are_refused_with_a_hint_to_quote(
    write_config: WriteConfig, section: str, key: str, shown: str
) -> None:
    rules = (
        "rules:\n  - name: r\n    topic: shop.orders\n    event_type: t\n"
        "    recipient: {external_person_id: id}\n"
        f"    {section}:\n      {key}: {{value: x}}\n"
    ).replace("    recipient: {external_person_id: id}\n    recipient:", "    recipient:")
    problems = _problems(write_config(rules))
    line = HEADER.count("\n") + (6 if section == "recipient" else 7)
    assert any(p.line == line and "a key must be text" in p.message for p in problems), problems
    assert any(shown in p.message for p in problems)


def test_yes_no_on_off_are_text_keys_in_yaml_1_2(write_config: WriteConfig) -> None:
    rules = RULE.replace("recipient:", "event_data: {yes: {value: 1}, no: a, on: b}, recipient:")
    loaded = load_bridge(write_config(rules), {})
    assert set(loaded.settings.rules[0].event_data) == {"yes", "no", "on"}


def test_a_date_key_and_a_list_key_are_refused(write_config: WriteConfig) -> None:
    rules = RULE + "x-keys:\n  2026-01-01: a\n  ? [a, b]\n  : c\n"
    messages = [p.message for p in _problems(write_config(rules))]
    assert any("not a date" in m for m in messages)
    assert any("not a map or list" in m for m in messages)


@pytest.mark.parametrize("version", ["true", "false", "1.0", "'1'", "2"])
def test_version_must_be_the_number_1(write_config: WriteConfig, version: str) -> None:
    header = HEADER.replace("version: 1", f"version: {version}")
    problem = _one_problem(write_config(RULE, header=header))
    assert problem.line == 1


@pytest.mark.parametrize("setting", ["max_in_flight", "shutdown_timeout_seconds"])
def test_a_boolean_is_not_a_number(write_config: WriteConfig, setting: str) -> None:
    problem = _one_problem(write_config(RULE + f"delivery:\n  {setting}: true\n"))
    assert "a number is expected here, not true or false" in problem.message


@pytest.mark.parametrize(("written", "expected"), [("2", "2"), ("'2'", "2"), ("3", "3")])
def test_api_version_may_be_written_as_a_number(
    write_config: WriteConfig, written: str, expected: str
) -> None:
    header = HEADER.replace("company_key: acme", f"company_key: acme\n  api_version: {written}")
    assert load_bridge(write_config(RULE, header=header), {}).settings.vibes.api_version == expected


@pytest.mark.parametrize("written", ["true", "2.5", "[2]"])
def test_api_version_is_still_refused_when_not_text_or_an_integer(
    write_config: WriteConfig, written: str
) -> None:
    header = HEADER.replace("company_key: acme", f"company_key: acme\n  api_version: {written}")
    assert _one_problem(write_config(RULE, header=header)).line == 4


@pytest.mark.parametrize(
    "topics", ["[shop.orders, shop.orders]", "[shop.orders, shop.shipments, shop.orders]"]
)
def test_a_rule_listing_a_topic_twice_is_refused(write_config: WriteConfig, topics: str) -> None:
    rules = RULE.replace("topic: shop.orders", f"topic: {topics}")
    problem = _one_problem(write_config(rules))
    assert problem.line == HEADER.count("\n") + 2
    assert "topic 'shop.orders' is listed more than once" in problem.message


def test_the_literal_password_warning_survives_an_error(write_config: WriteConfig) -> None:
    header = HEADER.replace("${TEST_VIBES_PASSWORD:-secret}", "plain-text-pw")
    with pytest.raises(ConfigError) as caught:
        load_bridge(write_config(RULE + "delivery: {max_in_flight: 0}\n", header=header), {})
    [warning] = caught.value.warnings
    assert "vibes.password is written in the file" in warning.message
    assert "plain-text-pw" not in str(caught.value)
    assert "plain-text-pw" not in warning.message
