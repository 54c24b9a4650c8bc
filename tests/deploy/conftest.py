"""Fixtures for the deployment checks: helm, the example chart, `helm template` as a function.

The helpers they use (and the tests import) are in tests/deploy/tools.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.tools import CHART, EXAMPLE_CHART, Render, must_succeed, run_tool, tool


@pytest.fixture(scope="session")
def helm() -> Path:
    return tool("helm")


@pytest.fixture(scope="session")
def example_chart(helm: Path) -> Path:
    """The example chart with its dependency (the bridge chart) packaged in."""
    must_succeed(run_tool([helm, "dependency", "build", EXAMPLE_CHART]))
    return EXAMPLE_CHART


@pytest.fixture(scope="session")
def render(helm: Path) -> Render:
    """`helm template` of a chart with --set/--values options; the manifests as text."""

    def _render(*options: str, chart: Path = CHART, release: str = "shop") -> str:
        result = run_tool([helm, "template", release, chart, "--namespace", "shop", *options])
        return must_succeed(result)

    return _render
