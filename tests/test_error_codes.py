"""The docs list exactly the error codes the code can produce.

The codes are the enumerations in bridge/errors.py (nothing else may construct a
DecodeError or MappingError: their code parameter is typed with them); the docs
are the tables a user reads: decode codes in docs/codecs.md, mapping codes in
docs/configuration.md. Each table's first column is parsed, every backquoted
code in it counted. Expiry codes (the ``expired`` letters' ``bridge.error.code``)
are listed in the ``expired`` row of docs/operations.md' dead-letter table.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from bridge.errors import DecodeCode, ExpiryCode, MappingCode

DOCS = Path(__file__).resolve().parents[1] / "docs"


def documented_codes(page: Path, heading: str) -> set[str]:
    """The backquoted codes in the first column of the table under ``heading``."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    codes: set[str] = set()
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            in_table = True
            first_column = line.split("|")[1]
            codes.update(re.findall(r"`([a-z0-9_]+)`", first_column))
        elif in_table or line.startswith("#"):
            break
    return codes


@pytest.mark.parametrize(
    ("enum", "page", "heading"),
    [
        (DecodeCode, DOCS / "codecs.md", "## Decode error codes"),
        (MappingCode, DOCS / "configuration.md", "## Mapping error codes"),
    ],
)
def test_the_docs_list_exactly_the_codes(enum: type[StrEnum], page: Path, heading: str) -> None:
    documented = documented_codes(page, heading)
    produced = {code.value for code in enum}
    assert documented - produced == set(), "documented but never produced"
    assert produced - documented == set(), "produced but not documented"


def documented_expiry_codes() -> set[str]:
    """The backquoted codes after "``bridge.error.code`` says which:" in the ``expired`` row."""
    page = (DOCS / "operations.md").read_text(encoding="utf-8")
    [row] = [line for line in page.splitlines() if line.startswith("| `expired` |")]
    listed = re.search(r"`bridge\.error\.code` says which: ([^)]*)\)", row)
    assert listed is not None, "the expired row no longer says which codes it has"
    return set(re.findall(r"`([a-z0-9_]+)`", listed.group(1)))


def test_the_docs_list_exactly_the_expiry_codes() -> None:
    documented = documented_expiry_codes()
    produced = {code.value for code in ExpiryCode}
    assert documented - produced == set(), "documented but never produced"
    assert produced - documented == set(), "produced but not documented"
    assert len(documented) >= 2  # the parse found the list, not nothing


def test_the_parser_reads_the_tables() -> None:
    # A table the parser could not find would make the comparison above vacuous.
    assert "null_value" in documented_codes(DOCS / "codecs.md", "## Decode error codes")
    assert len(documented_codes(DOCS / "configuration.md", "## Mapping error codes")) >= 8


def test_no_code_is_written_as_a_literal_elsewhere() -> None:
    # Every code comes from the enumerations: a string literal of a code in the
    # bridge's code (outside errors.py) is a second definition.
    bridge = Path(__file__).resolve().parents[1] / "bridge"
    codes = {code.value for code in (*DecodeCode, *MappingCode, *ExpiryCode)}
    found = []
    for path in bridge.rglob("*.py"):
        if path.name == "errors.py":
            continue
        text = path.read_text(encoding="utf-8")
        found += [f"{path.name}: {code}" for code in codes if f'"{code}"' in text]
    assert found == []
