"""validate, map and test run as real subprocesses, as a user or a CI job runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.configs import HEADER

REPO = Path(__file__).parents[2]
EXAMPLES = REPO / "examples"

RULES = """\
rules:
  - name: shipped
    topic: shop.shipments
    when: "status == 'SHIPPED'"
    event_type: order_shipped
    recipient:
      external_person_id: customer.id
    event_data:
      trace: _kafka.headers.trace
      key: _kafka.key
"""


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
        env=env,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(HEADER + RULES, encoding="utf-8")
    return path


def test_validate_accepts_the_examples() -> None:
    result = run("validate", "-c", str(EXAMPLES / "bridge.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_validate_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        HEADER
        + "rules:\n"
        + "  - name: a\n    topic: shop.orders\n    event_type: 'no spaces'\n"
        + "    recipient: {external_person_id: id}\n"
        + "  - name: a\n    topic: shop.orders\n    event_type: ok\n"
        + "    recipient: {external_person_id: 'x[='}\n",
        encoding="utf-8",
    )
    result = run("validate", "-c", str(path))
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    offset = HEADER.count("\n")
    assert any(line.startswith(f"{path}:{offset + 4}: event_type") for line in lines), lines
    assert any(line.startswith(f"{path}:{offset + 6}: duplicate rule name") for line in lines), (
        lines
    )
    assert any(
        line.startswith(f"{path}:{offset + 9}: recipient.external_person_id") for line in lines
    )


def test_validate_reads_the_config_from_the_environment(config: Path) -> None:
    import os

    result = run("validate", env={**os.environ, "BRIDGE_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr


def test_validate_without_a_config_is_a_usage_error() -> None:
    import os

    env = {key: value for key, value in os.environ.items() if key != "BRIDGE_CONFIG"}
    assert run("validate", env=env).returncode == 2


def test_map_prints_one_body_per_event_and_reports_bad_lines(config: Path) -> None:
    records = [
        {"status": "SHIPPED", "customer": {"id": "c1"}},
        {"status": "PACKED", "customer": {"id": "c2"}},
        "not an object",
        {"status": "SHIPPED", "customer": {}},
        {"status": "SHIPPED", "customer": {"id": "c5"}},
    ]
    stdin = "\n".join(json.dumps(record) for record in records) + "\n{broken\n"
    result = run(
        "map",
        "-c",
        str(config),
        "--topic",
        "shop.shipments",
        "--key",
        "k1",
        "--header",
        "trace=t-1",
        "--partition",
        "3",
        "--offset",
        "100",
        stdin=stdin,
    )
    assert result.returncode == 1
    bodies = [json.loads(line) for line in result.stdout.splitlines()]
    assert [body["event_data"]["external_person_id"] for body in bodies] == ["c1", "c5"]
    assert bodies[0]["event_data"]["trace"] == "t-1"
    assert bodies[0]["event_data"]["key"] == "k1"
    assert bodies[0]["debug_data"] == {
        "rule": "shipped",
        "topic": "shop.shipments",
        "partition": 3,
        "offset": 100,
    }
    assert bodies[1]["debug_data"]["offset"] == 104
    errors = result.stderr.splitlines()
    assert errors[0].startswith("line 3: decode_error: not_an_object")
    assert errors[1].startswith("line 4: mapping_error: no_recipient")
    assert errors[2].startswith("line 6: decode_error")
    assert len(errors) == 3


def test_map_reads_a_file_and_exits_0_when_all_map(config: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"status": "SHIPPED", "customer": {"id": 7}}) + "\n", encoding="utf-8"
    )
    result = run("map", "-c", str(config), "--topic", "shop.shipments", "-i", str(source))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event_data"]["external_person_id"] == "7"


def test_map_streams_large_inputs(config: Path) -> None:
    count = 20_000
    line = json.dumps({"status": "SHIPPED", "customer": {"id": "c"}}) + "\n"
    result = run("map", "-c", str(config), "--topic", "shop.shipments", stdin=line * count)
    assert result.returncode == 0, result.stderr[:500]
    assert result.stdout.count("\n") == count


def test_map_on_a_topic_without_rules_is_a_usage_error(config: Path) -> None:
    assert run("map", "-c", str(config), "--topic", "nope", stdin="{}\n").returncode == 2


CASES = """\
cases:
  - name: shipped texts the customer
    topic: shop.shipments
    record:
      value: {status: SHIPPED, customer: {id: c1}}
      key: k
      headers: {trace: t}
    expect:
      - rule: shipped
        event_type: order_shipped
        event_data: {external_person_id: c1, trace: t, key: k}
  - name: packed sends nothing
    topic: shop.shipments
    record: {value: {status: PACKED}}
    expect: []
  - name: a missing customer is a mapping error
    topic: shop.shipments
    record: {value: {status: SHIPPED}}
    errors: [{rule: shipped, code: no_recipient}]
"""


def test_test_passes_good_cases(config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(CASES, encoding="utf-8")
    result = run("test", "-c", str(config), str(cases))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 cases passed, 0 cases failed" in result.stdout


def test_test_prints_a_diff_for_each_failure(config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        CASES.replace("external_person_id: c1,", "external_person_id: WRONG,").replace(
            "code: no_recipient", "code: something_else"
        ),
        encoding="utf-8",
    )
    result = run("test", "-c", str(config), str(cases))
    assert result.returncode == 1
    assert f"FAIL shipped texts the customer ({cases}:2)" in result.stdout
    assert '-        "external_person_id": "WRONG",' in result.stdout
    assert '+        "external_person_id": "c1",' in result.stdout
    assert "FAIL a missing customer is a mapping error" in result.stdout
    assert "1 cases passed, 2 cases failed" in result.stdout


def test_test_rejects_a_malformed_cases_file(config: Path, tmp_path: Path) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "cases:\n  - name: x\n    topic: shop.shipments\n    recrd: {}\n", encoding="utf-8"
    )
    result = run("test", "-c", str(config), str(cases))
    assert result.returncode == 2
    assert f"{cases}:4:" in result.stderr


def test_the_example_mapping_tests_pass() -> None:
    result = run("test", "-c", str(EXAMPLES / "bridge.yaml"), str(EXAMPLES / "bridge.tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
