"""Tracing off (the default) never imports OpenTelemetry: start-up time and memory unchanged."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.commands.test_cli_lazy import imported_by
from tests.support.paths import ROOT

# Builds a run's tracing from a file's settings in a fresh process, as the runner does,
# then prints every module imported.
PROBE = """
import sys
import bridge.service.runner
from bridge.config.model import TracingSettings
from bridge.tracing import start_tracing
settings = TracingSettings.model_validate({sys.argv[1]})
tracing = start_tracing(settings, vibes_base_url="http://x", group_id="g")
print("ENABLED", tracing.enabled)
tracing.shutdown(0.1)
print("MODULES", " ".join(sorted(sys.modules)))
"""


def _modules(settings: str) -> tuple[bool, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.replace("{sys.argv[1]}", settings)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = result.stdout.splitlines()
    enabled = next(line for line in lines if line.startswith("ENABLED ")).split()[1] == "True"
    modules = next(line for line in lines if line.startswith("MODULES ")).split()[1:]
    return enabled, set(modules)


def _otel(modules: set[str]) -> set[str]:
    return {name for name in modules if name.startswith("opentelemetry")}


@pytest.mark.parametrize("settings", ["{}", "{'enabled': False, 'endpoint': 'http://c:4318'}"])
def test_off_the_service_never_imports_opentelemetry(settings: str) -> None:
    enabled, modules = _modules(settings)
    assert not enabled
    assert "bridge.service.runner" in modules  # the probe did load the service
    assert _otel(modules) == set()
    assert "bridge.tracing.otel" not in modules


def test_on_it_does() -> None:
    """The probe can see OpenTelemetry when tracing loads it."""
    enabled, modules = _modules("{'enabled': True, 'endpoint': 'http://127.0.0.1:9'}")
    assert enabled
    assert "opentelemetry.sdk.trace" in modules


def test_validate_never_imports_opentelemetry() -> None:
    assert _otel(imported_by("validate", "-c", "examples/bridge.yaml")) == set()
