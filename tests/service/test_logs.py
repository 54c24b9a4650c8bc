"""The service's log set-up: per-request lines of the HTTP client stay at debug."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bridge.service.logs import configure_json_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_json_logging changes process-wide loggers: put them back for later tests."""
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    handlers, root_level, httpx_level = root.handlers[:], root.level, httpx_logger.level
    yield
    root.handlers[:] = handlers
    root.setLevel(root_level)
    httpx_logger.setLevel(httpx_level)


def test_httpx_request_lines_are_hidden_at_info() -> None:
    configure_json_logging("info")

    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    assert logging.getLogger("httpx").isEnabledFor(logging.WARNING)


def test_httpx_request_lines_show_at_debug() -> None:
    configure_json_logging("debug")

    assert logging.getLogger("httpx").isEnabledFor(logging.INFO)
