"""Transport selection (TLS contexts are built and tested in bridge/config/tls.py)."""

from __future__ import annotations

import httpx
from httpx_aiohttp import AiohttpTransport

from bridge.delivery import DEFAULT_TRANSPORT, TransportKind, build_transport


def test_the_default_is_the_measured_choice() -> None:
    assert DEFAULT_TRANSPORT is TransportKind.AIOHTTP
    assert isinstance(build_transport(), AiohttpTransport)
    assert isinstance(build_transport(TransportKind.HTTPCORE), httpx.AsyncHTTPTransport)
