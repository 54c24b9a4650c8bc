"""Small configuration files for tests: a valid header; ``write_config`` (tests/support/fixtures.py)
writes rules under it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
"""The ``write_config`` fixture: ``write_config(rules, *, header=HEADER, name="bridge.yaml")``."""
