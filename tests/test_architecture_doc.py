"""docs/architecture.md cannot drift from the tree: its package table and its exemptions.

The package table is where a newcomer looks first, so it must name every
package and module that exists, and nothing that does not; the list of files
exempted from the import rules must be the list ruff actually has.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
BRIDGE = ROOT / "bridge"
_PATH = re.compile(r"`((?:bridge|devtools)/[\w/]*(?:\.py|/))`")
_MODULE = re.compile(r"`(\w+\.py)`")


def _section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _package_rows() -> dict[str, str]:
    """First-column path -> the rest of the row, for every row of the package table."""
    rows: dict[str, str] = {}
    for line in _section("## Packages").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not line.startswith("|"):
            continue
        for path in _PATH.findall(cells[0]):
            rows[path] = " | ".join(cells[1:])
    return rows


def _bridge_parts() -> set[str]:
    # Folders of modules, with or without an __init__.py (bridge/service has none).
    packages = {f"bridge/{path.parent.name}/" for path in BRIDGE.glob("*/*.py")}
    modules = {
        f"bridge/{path.name}"
        for path in BRIDGE.glob("*.py")
        if path.name not in ("__init__.py", "__main__.py")
    }
    return packages | modules


def test_the_table_names_every_package_and_module_of_bridge_and_nothing_else() -> None:
    named = {path for path in _package_rows() if path.startswith("bridge/")}
    assert named == _bridge_parts()


def test_every_module_of_a_package_is_named_in_its_row() -> None:
    """A row says what each of its package's modules is for: a new module needs a line."""
    missing: dict[str, set[str]] = {}
    unknown: dict[str, set[str]] = {}
    for path, row in _package_rows().items():
        if not path.startswith("bridge/") or not path.endswith("/"):
            continue
        actual = {p.name for p in (ROOT / path).glob("*.py") if p.name != "__init__.py"}
        named = set(_MODULE.findall(row))
        if actual - named:
            missing[path] = actual - named
        if named - actual:
            unknown[path] = named - actual
    assert not missing, f"modules without a word in docs/architecture.md: {missing}"
    assert not unknown, f"docs/architecture.md names modules that do not exist: {unknown}"


def test_no_row_says_only_that_a_part_exists() -> None:
    for path, row in _package_rows().items():
        assert row.strip().lower() not in ("", "exists"), path
        assert not row.rstrip().endswith("| exists"), f"{path}: say what it is for"


def _ruff_exemptions() -> set[str]:
    """Every bridge/ file exempted from TID251, from pyproject.toml and the nested ruff.toml."""
    exempt: set[str] = set()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ignores = pyproject["tool"]["ruff"]["lint"]["per-file-ignores"]
    exempt |= {
        path for path, rules in ignores.items() if path.startswith("bridge/") and "TID251" in rules
    }
    for config in BRIDGE.glob("*/ruff.toml"):
        lint = tomllib.loads(config.read_text(encoding="utf-8")).get("lint", {})
        for key in ("per-file-ignores", "extend-per-file-ignores"):
            for name, rules in lint.get(key, {}).items():
                if "TID251" in rules:
                    exempt.add(f"bridge/{config.parent.name}/{name}")
    return exempt


def test_the_exemptions_listed_are_ruffs() -> None:
    listed = set(re.findall(r"`(bridge/[\w/]+\.py)`", _section("### Exemptions")))
    assert listed == _ruff_exemptions()
