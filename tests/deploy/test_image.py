"""The Dockerfile: hadolint, and the facts the chart relies on. (Building and
running the image is CI's image step: scripts/image_smoke.py.)"""

from __future__ import annotations

import re

from tests.deploy.tools import must_succeed, run_tool, tool
from tests.support.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"


def test_hadolint_finds_nothing() -> None:
    hadolint = tool("hadolint")
    must_succeed(run_tool([hadolint, "--no-color", "--failure-threshold", "info", DOCKERFILE]))


def test_hadolint_fails_on_a_bad_dockerfile() -> None:
    """The lint can fail: an unpinned apt-get install without cleanup is reported."""
    bad = "FROM debian:bookworm\nRUN apt-get update && apt-get install -y curl\n"
    result = run_tool([tool("hadolint"), "--no-color", "-"], stdin=bad)
    assert result.returncode != 0
    assert "DL3008" in result.stdout


def test_runtime_stage_is_non_root_and_runs_the_service() -> None:
    text = DOCKERFILE.read_text()
    runtime = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE), "numeric non-root user"
    assert 'ENTRYPOINT ["vibes-bridge"]' in runtime
    assert 'CMD ["run"]' in runtime
    assert "BRIDGE_CONFIG=/etc/vibes-bridge/bridge.yaml" in runtime
    assert "ARG BASE_IMAGE=" in text
    for label in ("title", "version", "revision", "created", "description"):
        assert f"org.opencontainers.image.{label}=" in runtime


def test_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") :][:1] == ["*"], "everything is excluded first"
    allowed = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "bridge", "examples", "schemas"}
