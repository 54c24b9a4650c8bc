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
        "--timestamp",
        "1764000000000",
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
        "timestamp": 1764000000000,
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


# ------------------------------------------------------------ hostile input: never a traceback


@pytest.mark.parametrize(
    "options",
    [
        ["--offset", str(2**63)],
        ["--offset", "-1"],
        ["--partition", str(2**31)],
        ["--partition", str(2**63)],
        ["--timestamp", str(2**63)],
        ["--offset", "99999999999999999999999999999"],
    ],
)
def test_map_refuses_coordinates_kafka_cannot_hold(config: Path, options: list[str]) -> None:
    line = json.dumps({"status": "SHIPPED", "customer": {"id": "c"}}) + "\n"
    result = run("map", "-c", str(config), "--topic", "shop.shipments", *options, stdin=line)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_map_stops_with_a_usage_error_when_offsets_pass_int64(config: Path) -> None:
    line = json.dumps({"status": "SHIPPED", "customer": {"id": "c"}}) + "\n"
    result = run(
        "map", "-c", str(config), "--topic", "shop.shipments", "--offset", str(2**63 - 2),
        stdin=line * 3,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout.count("\n") == 2
    assert result.stderr.startswith("line 3: --offset plus the records read passes")


@pytest.mark.parametrize("depth", [1_000, 1_023])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_map_a_deeply_nested_record_fails_alone(tmp_path: Path, depth: int, opener: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER
        + "rules:\n  - name: texts\n    topic: shop.orders\n    event_type: t\n"
        + "    recipient: {external_person_id: id}\n"
        + "    event_data:\n      text: 'to_string(deep)'\n      all: '@'\n",
        encoding="utf-8",
    )
    closer = "]" if opener == "[" else "}"
    deep = '{"id": "a", "deep": ' + opener * depth + "1" + closer * depth + "}"
    lines = [deep, json.dumps({"id": "b"}), deep, json.dumps({"id": "c"})]
    result = run("map", "-c", str(path), "--topic", "shop.orders", stdin="\n".join(lines) + "\n")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    ids = [
        json.loads(body)["event_data"]["external_person_id"] for body in result.stdout.splitlines()
    ]
    assert ids == ["b", "c"]
    errors = result.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].startswith("line 1: mapping_error: ")
    assert "rule texts: event_data." in errors[0]
    assert errors[1].startswith("line 3: mapping_error: ")


def _validate_problem(path: Path) -> str:
    result = run("validate", "-c", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize(
    "when",
    [
        "(" * 500 + "status" + ")" * 500,
        "!" * 2_000 + "status",
        " || ".join(["status"] * 500),
        "[" * 400 + "status" + "]" * 400,
    ],
)
def test_validate_a_deeply_nested_when_is_a_problem_at_its_line(tmp_path: Path, when: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER + RULES.replace("when: \"status == 'SHIPPED'\"", f'when: "{when}"'),
        encoding="utf-8",
    )
    output = _validate_problem(path)
    assert f"{path}:{HEADER.count(chr(10)) + 4}: when: invalid JMESPath expression: it nests" in (
        output
    )


@pytest.mark.parametrize(
    "schema_text",
    ["[" * 100_000 + "]" * 100_000, '{"type": ' * 5_000 + '"string"' + "}" * 5_000],
)
def test_validate_a_deeply_nested_schema_file_is_a_problem_at_its_line(
    tmp_path: Path, schema_text: str
) -> None:
    (tmp_path / "deep.avsc").write_text(schema_text, encoding="utf-8")
    path = tmp_path / "bridge.yaml"
    header = HEADER.replace(
        "  - topic: shop.shipments\n    format: json\n",
        "  - topic: shop.shipments\n    format: avro\n    schema: deep.avsc\n",
    )
    path.write_text(header + RULES, encoding="utf-8")
    output = _validate_problem(path)
    line = header.splitlines().index("    schema: deep.avsc") + 1
    assert f"{path}:{line}: schema file" in output
    assert "nests more than" in output


def test_validate_a_constant_beyond_64_bits_is_a_problem_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        HEADER + RULES + "      big: {value: 123456789012345678901234567890}\n", encoding="utf-8"
    )
    output = _validate_problem(path)
    assert f"{path}:{(HEADER + RULES).count(chr(10)) + 1}: event_data.big: the value" in output


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "  - name: states nothing\n    topic: shop.shipments\n    record: {value: {}}\n",
            "a case states expect:, errors: or both",
        ),
        (
            "  - name: far\n    topic: shop.shipments\n"
            f"    record: {{value: {{}}, offset: {2**63}}}\n    expect: []\n",
            "cases.0.record.offset",
        ),
        (
            "  - name: far\n    topic: shop.shipments\n"
            f"    record: {{value: {{}}, partition: {2**31}}}\n    expect: []\n",
            "cases.0.record.partition",
        ),
    ],
)
def test_test_refuses_an_invalid_case_with_its_line(
    config: Path, tmp_path: Path, case: str, message: str
) -> None:
    cases = tmp_path / "cases.yaml"
    cases.write_text("cases:\n" + case, encoding="utf-8")
    result = run("test", "-c", str(config), str(cases))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{cases}:" in result.stderr
    assert message in result.stderr
