"""What the deployment checks share: the tools, running them, reading rendered manifests.

The tools come from `scripts/deploy-tools install` (helm and psa-check under
.cache/deploy-tools/bin, promtool from Debian's prometheus package) and from the
dev extras (hadolint, kubernetes-validate). A missing tool FAILS its test with the
command that installs it: CI must never pass by skipping these checks. The
fixtures over these helpers are in this folder's conftest.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support.paths import ROOT

TOOLS_BIN = ROOT / ".cache" / "deploy-tools" / "bin"
CHART = ROOT / "helm" / "vibes-bridge"
EXAMPLE_CHART = ROOT / "helm" / "examples" / "shop-with-bridge"
TOOL_TIMEOUT_S = 120
INSTALL_HINT = "run `scripts/deploy-tools install` (and `make venv`)"


def tool(name: str) -> Path:
    """The path of a deployment tool, or a test failure that says how to get it."""
    for candidate in (TOOLS_BIN / name, Path(sys.executable).parent / name):
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}", pytrace=False)
    return Path(found)


def run_tool(
    args: Sequence[str | Path], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
        cwd=ROOT,
    )


def must_succeed(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{result.args[:3]} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout


Render = Callable[..., str]


def documents(manifests: str) -> list[dict[str, Any]]:
    """The non-empty documents of a YAML stream, as plain dicts and lists."""
    return [doc for doc in YAML(typ="safe", pure=True).load_all(manifests) if doc]


def kinds(manifests: str) -> list[str]:
    return sorted(doc["kind"] for doc in documents(manifests))


def only(manifests: str, kind: str) -> dict[str, Any]:
    found = [doc for doc in documents(manifests) if doc["kind"] == kind]
    assert len(found) == 1, f"want one {kind}, got {len(found)}"
    return found[0]
