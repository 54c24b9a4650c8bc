"""Loading schema files: one clear line for each way a file can be unusable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.codecs import SchemaFileError, load_avro_schema
from bridge.errors import BridgeError


def _write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "schema.avsc"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _record(*fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": list(fields)}


def test_a_valid_file_loads(tmp_path: Path) -> None:
    schema = load_avro_schema(_write(tmp_path, _record({"name": "a", "type": "string"})))
    assert schema["name"] == "R"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", ": not JSON (line 1, column 2"),
        ("", ": not JSON"),
        (
            {"type": "recrd", "name": "R", "fields": []},
            "not a valid Avro schema: unknown type 'recrd'",
        ),
        ({"type": "record", "name": "R"}, "record 'R' has no 'fields' list"),
        (_record({"name": "a"}), "not a valid Avro schema: Record field 'a' is missing 'type'"),
        (
            _record({"name": "a", "type": "int"}, {"name": "a", "type": "string"}),
            "record 'R' has the field 'a' twice",
        ),
        (_record({"name": "first-name", "type": "int"}), "invalid field name 'first-name'"),
        (
            _record({"name": "p", "type": {"type": "bytes", "logicalType": "decimal"}}),
            "a decimal needs an integer 'precision'",
        ),
        (
            _record(
                {
                    "name": "p",
                    "type": {"type": "bytes", "logicalType": "decimal", "precision": 2, "scale": 3},
                }
            ),
            "a decimal's 'scale' must be an integer from 0 to its precision",
        ),
        (_record({"name": "u", "type": ["int", "int"]}), "a union holds the type 'int' twice"),
        (_record({"name": "e", "type": {"type": "enum", "name": "E"}}), "missing 'symbols'"),
        (_record({"name": "x", "type": "com.example.Nope"}), "com.example.Nope"),
        ('"string"', "the top-level type must be a record"),
        ('["null", "int"]', "the top-level type must be a record"),
        (
            _record({"name": "xs", "type": {"type": "array", "items": "null"}}),
            "an array whose items take no bytes",
        ),
    ],
)
def test_unusable_files_give_one_line(tmp_path: Path, content: Any, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(SchemaFileError) as caught:
        load_avro_schema(path)
    text = str(caught.value)
    assert message in text
    assert text.startswith(f"schema file {path}")
    assert "\n" not in text
    assert isinstance(caught.value, BridgeError)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaFileError, match="does not exist"):
        load_avro_schema(tmp_path / "nope.avsc")


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaFileError, match="cannot be read"):
        load_avro_schema(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.avsc"
    path.write_bytes(b'{"doc": "caf\xe9"}')
    with pytest.raises(SchemaFileError, match="not UTF-8"):
        load_avro_schema(path)


def test_a_top_level_union_of_records_is_allowed(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"type": "record", "name": "A", "fields": []},
            {"type": "record", "name": "B", "fields": [{"name": "a", "type": "A"}]},
        ],
    )
    assert len(load_avro_schema(path)) == 2


def test_long_fastavro_messages_are_cut(tmp_path: Path) -> None:
    long_name = "com." + ".".join(["segment"] * 60) + ".Nope"
    path = _write(tmp_path, _record({"name": "x", "type": long_name}))
    with pytest.raises(SchemaFileError) as caught:
        load_avro_schema(path)
    assert len(str(caught.value)) < 300 + len(str(path))
