"""The HTTP transport under the Vibes client: aiohttp's by default, httpcore's on request.

httpx's own async transport (httpcore's pool) costs several times more CPU per
request at 64 concurrent requests than the aiohttp transport of ``httpx-aiohttp``
(bench/http_transport.py, docs/performance.md), so the bridge keeps httpx's API
and swaps the layer below it. Both are kept: ``TransportKind`` selects one, and
tests inject ``httpx.MockTransport`` directly.
"""

from __future__ import annotations

import ssl
from enum import StrEnum
from typing import Final

import httpx
from httpx_aiohttp import AiohttpTransport

# Idle keep-alive connections are closed after this long (httpx's default).
KEEPALIVE_EXPIRY_SECONDS: Final = 5.0


class TransportKind(StrEnum):
    """Which connection layer carries the requests."""

    AIOHTTP = "aiohttp"  # httpx-aiohttp: the default, chosen by measurement
    HTTPCORE = "httpcore"  # httpx's own default transport


DEFAULT_TRANSPORT: Final = TransportKind.AIOHTTP


def build_transport(
    kind: TransportKind = DEFAULT_TRANSPORT,
    *,
    tls: ssl.SSLContext | None = None,
    max_connections: int = 64,
) -> httpx.AsyncBaseTransport:
    """A keep-alive connection pool of at most ``max_connections`` to Vibes.

    ``tls`` is the context built from ``vibes.tls`` when the file was loaded
    (``bridge.config.tls``): a custom CA and the client certificate for mutual TLS.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
    context = tls if tls is not None else ssl.create_default_context()
    if kind is TransportKind.HTTPCORE:
        return httpx.AsyncHTTPTransport(verify=context, limits=limits)
    return AiohttpTransport(verify=context, limits=limits)
