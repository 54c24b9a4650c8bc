"""The loading defects seen from the command line: ``FILE:LINE: message``, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configs import HEADER, WriteConfig

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)
SECRET = "S3cr3t-PW"


def _bridge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("extra", "line", "wanted"),
    [
        ("delivery:\n  max_retry_duration: 9999999999d\n", 14, "the duration is too large"),
        ("x-deep: " + "[" * 300 + "]" * 300 + "\n", 13, "nested more than 64 levels deep"),
        ("x-tagged: !foo [a, b]\n", 13, "custom tags are not allowed (!foo)"),
        ("x-keys: {true: a}\n", 13, 'quote it ("true": ...)'),
        ("kafka: {group_id: '${UNSET:-${Y}}'}\n", 13, "cannot hold another ${...}"),
        ("delivery:\n  max_retry_duration: ${RETRY}\n", 14, "invalid duration ${RETRY}"),
    ],
)
def test_validate_reports_the_line_and_exits_2(
    write_config: WriteConfig, extra: str, line: int, wanted: str
) -> None:
    path = write_config(RULE + extra)
    result = _bridge("validate", "-c", str(path), env={"RETRY": SECRET})
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert f"{path}:{line}: " in result.stdout
    assert wanted in result.stdout
    assert SECRET not in result.stdout + result.stderr


def test_an_alias_bomb_is_refused_by_validate(write_config: WriteConfig) -> None:
    bomb = ["x-a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    bomb += [f"x-a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 8)]
    path = write_config(RULE + "\n".join(bomb) + "\n")
    result = _bridge("validate", "-c", str(path))
    assert result.returncode == 2, result
    assert "expand to more than 100,000 values" in result.stdout


def test_the_password_warning_is_printed_beside_the_errors(write_config: WriteConfig) -> None:
    header = HEADER.replace("${TEST_VIBES_PASSWORD:-secret}", SECRET)
    path = write_config(RULE + "version_2: x\n", header=header)
    result = _bridge("validate", "-c", str(path))
    assert result.returncode == 2, result
    assert f"{path}:5: warning: vibes.password is written in the file" in result.stdout
    assert "unknown key 'version_2'" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    result = _bridge("map", "-c", str(path), "--topic", "shop.orders", "-i", os.devnull)
    assert result.returncode == 2, result
    assert "warning: vibes.password" in result.stderr


def test_a_deeply_nested_cases_file_exits_2(write_config: WriteConfig, tmp_path: Path) -> None:
    config = write_config(RULE)
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n  - name: deep\n    record: {value: " + "[" * 400 + "]" * 400 + "}\n")
    result = _bridge("test", "-c", str(config), str(cases))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert f"{cases}:3: maps and lists are nested more than 64 levels deep" in result.stderr


def test_a_misspelt_function_is_reported_by_validate_at_its_line(
    write_config: WriteConfig,
) -> None:
    path = write_config(
        "rules:\n"
        "  - name: r\n"
        "    topic: shop.orders\n"
        "    event_type: e\n"
        "    recipient: {external_person_id: id}\n"
        "    event_data:\n"
        "      items: {path: 'lenght(items)', default: 0}\n"
    )
    result = _bridge("validate", "-c", str(path))
    assert result.returncode == 2, result
    assert f"{path}:17: event_data.items: " in result.stdout
    assert "unknown function lenght() (did you mean length()?)" in result.stdout


def test_validate_warns_about_a_rule_whose_constants_come_close_to_the_body_limit(
    write_config: WriteConfig,
) -> None:
    rule = (
        "rules:\n  - {name: promo, topic: shop.orders, event_type: t, "
        "recipient: {external_person_id: id}, "
        f"event_data: {{banner: {{value: {'x' * 900}}}}}}}\n"
    )
    header = HEADER.replace(
        "  company_key: acme\n", "  company_key: acme\n  max_body_bytes: 1024\n"
    )
    result = _bridge("validate", "-c", str(write_config(rule, header=header)))
    assert result.returncode == 0, result.stderr
    assert "warning: rule promo: its constant parts alone make a" in result.stdout
    assert "of vibes.max_body_bytes (1024)" in result.stdout
