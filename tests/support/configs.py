"""Small configuration files for tests: a valid header, and a fixture that writes rules under it."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

HEADER = """\
version: 1
vibes:
  company_key: acme
  username: ${TEST_VIBES_USERNAME:-user}
  password: ${TEST_VIBES_PASSWORD:-secret}
sources:
  - topic: shop.orders
    format: json
  - topic: shop.shipments
    format: json
"""

WriteConfig = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """Write HEADER (unless told otherwise) plus ``rules`` text; return the file's path."""

    def write(rules: str, *, header: str = HEADER, name: str = "bridge.yaml") -> Path:
        path = tmp_path / name
        path.write_text(header + textwrap.dedent(rules), encoding="utf-8")
        return path

    return write
