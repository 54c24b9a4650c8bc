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

from bridge.config.model import TlsSettings

# Idle keep-alive connections are closed after this long (httpx's default).
KEEPALIVE_EXPIRY_SECONDS: Final = 5.0


class TransportKind(StrEnum):
    """Which connection layer carries the requests."""

    AIOHTTP = "aiohttp"  # httpx-aiohttp: the default, chosen by measurement
    HTTPCORE = "httpcore"  # httpx's own default transport


DEFAULT_TRANSPORT: Final = TransportKind.AIOHTTP


def ssl_context(tls: TlsSettings | None) -> ssl.SSLContext:
    """Server verification (with a custom CA when given) and the client certificate for mTLS.

    Raises ``OSError``/``ssl.SSLError`` for unreadable or mismatched files; the
    caller turns that into a configuration error at start-up.
    """
    ca_file = tls.ca_file if tls is not None else None
    context = ssl.create_default_context(cafile=ca_file)
    if tls is not None and tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(certfile=tls.cert_file, keyfile=tls.key_file)
    return context


def build_transport(
    kind: TransportKind = DEFAULT_TRANSPORT,
    *,
    tls: TlsSettings | None = None,
    max_connections: int = 64,
) -> httpx.AsyncBaseTransport:
    """A keep-alive connection pool of at most ``max_connections`` to Vibes."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS,
    )
    context = ssl_context(tls)
    if kind is TransportKind.HTTPCORE:
        return httpx.AsyncHTTPTransport(verify=context, limits=limits)
    return AiohttpTransport(verify=context, limits=limits)


def as_httpx_error(exc: Exception) -> httpx.HTTPError | None:
    """An exception from below httpx as the httpx error it stands for; None for anything else.

    httpx-aiohttp maps most aiohttp errors to httpx's, but lets the rest through
    unchanged (a malformed answer surfaces as aiohttp's own ClientResponseError,
    while sending or while reading the body). The client promises never to raise
    for network trouble, and the delivery package may not import aiohttp, so such
    errors are recognised by where their class lives. Anything else (a bug) is
    not translated: it must surface, not be retried forever.
    """
    if isinstance(exc, httpx.HTTPError):
        return exc
    if not _from_aiohttp(exc) and not isinstance(exc, OSError):
        return None
    if isinstance(exc, TimeoutError):
        return httpx.ReadTimeout(type(exc).__name__)
    return httpx.RemoteProtocolError(type(exc).__name__)


def _from_aiohttp(exc: Exception) -> bool:
    return type(exc).__module__.partition(".")[0] in ("aiohttp", "httpx_aiohttp")
