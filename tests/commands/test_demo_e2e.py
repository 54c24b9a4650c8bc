"""The README's demo runs to the end on the session's broker and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


@pytest.mark.kafka
@pytest.mark.slow
def test_the_demo_runs_end_to_end(kafka_bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo finished: OK" in result.stdout
    assert "decode_error (truncated)" in result.stdout
    assert "sent      order_shipped_push" in result.stdout
    assert "SIGTERM: the bridge stopped with exit status 0" in result.stdout
