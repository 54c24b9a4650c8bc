"""What the bridge's two listeners share: bounds, a gate at accept, and safe refusals.

The callback receiver faces the internet and the management port faces the
cluster; both are plain aiohttp servers, and aiohttp on its own

- answers a request it cannot parse (bad request line, a header with a control
  character, broken chunked framing) before any route or middleware runs, in
  plain text quoting the offending bytes, after logging them with a traceback:
  those bytes can be the token in the path, Basic credentials or a phone number;
- keeps any number of connections open, and has no notion of a peer allow-list.

aiohttp has no public hook for its error answer (aio-libs/aiohttp#3287 is
open), so, as the simulator does for itself (bridge/sim/protocol.py, which the
service may not import), the one method that builds it,
``RequestHandler.handle_error``, is overridden, and a runner hands aiohttp's
server our request handler. The same handler admits or closes each connection
in ``connection_made``: before a single byte of it is read or parsed.

Bounds, and who enforces them:

- request line, header size and header count: aiohttp's parser
  (``max_line_size``, ``max_field_size``, ``max_headers``), answered as malformed;
- the request head (header read) and keep-alive idleness: aiohttp's
  ``keepalive_timeout``, which runs from accept, and again from each answer,
  until a complete request head has arrived; bytes trickling in do not restart
  it, so a client sending one header byte a second is cut at the bound, like
  one that connects and sends nothing;
- the body: aiohttp has no body timeout, so the handlers that read a body wrap
  the read in :attr:`ListenerBounds.body_timeout_seconds`; an unread body is
  drained for at most ``lingering_time`` after the answer, then the connection
  is closed;
- the TLS handshake: asyncio's ``ssl_handshake_timeout`` (aiohttp's site does
  not pass it, so :class:`BoundedSite` does);
- concurrent connections: :class:`ConnectionGate` (aiohttp has no limit); above
  the bound a new connection is closed at once and counted, open ones go on.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Any, Final, Protocol

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)


class Refusal(StrEnum):
    """Why a connection was closed at accept; the ``reason`` label."""

    CONNECTION_LIMIT = "connection_limit"
    ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class ListenerBounds:
    """One listener's limits (docs/running.md, "Listener bounds and label sets")."""

    max_connections: int
    head_timeout_seconds: float
    """Accept (or the previous answer) to a complete request head; also the idle bound."""
    body_timeout_seconds: float
    max_line_size: int = 4096
    max_field_size: int = 4096
    max_headers: int = 64
    lingering_seconds: float = 2.0
    tls_handshake_timeout_seconds: float = 10.0

    def runner_options(self) -> dict[str, Any]:
        """aiohttp's own knobs, handed to every connection's request handler."""
        return {
            "keepalive_timeout": self.head_timeout_seconds,
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_field_size,
            "max_headers": self.max_headers,
            "lingering_time": self.lingering_seconds,
        }


CALLBACK_BOUNDS: Final = ListenerBounds(
    max_connections=256, head_timeout_seconds=10.0, body_timeout_seconds=10.0
)
MANAGEMENT_BOUNDS: Final = ListenerBounds(
    max_connections=32, head_timeout_seconds=10.0, body_timeout_seconds=5.0
)


class ListenerEvents(Protocol):
    """Where a listener reports what never reaches its routes (its metrics)."""

    def malformed(self) -> None: ...

    def refused(self, reason: Refusal) -> None: ...


PeerCheck = Callable[[str], bool]
"""Whether a connection from this peer address may send a request at all."""


class ConnectionGate:
    """Admits connections up to a bound, and only from allowed peers.

    Hand-written: aiohttp counts its connections but never refuses one.
    """

    def __init__(
        self, max_connections: int, events: ListenerEvents, peer_allowed: PeerCheck | None
    ) -> None:
        self._max = max_connections
        self._events = events
        self._peer_allowed = peer_allowed
        self._open: set[object] = set()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, connection: object, transport: asyncio.BaseTransport) -> bool:
        """Whether ``connection`` may go on; a refusal is counted, never logged per peer."""
        if self._peer_allowed is not None and not self._peer_allowed(_peer_host(transport)):
            self._events.refused(Refusal.ADDRESS)
            return False
        if len(self._open) >= self._max:
            self._events.refused(Refusal.CONNECTION_LIMIT)
            return False
        self._open.add(connection)
        return True

    def release(self, connection: object) -> None:
        self._open.discard(connection)


def _peer_host(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


def describe(exc: BaseException) -> str:
    """The exception's class and where it was raised, without its message (which quotes bytes)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


# aiohttp names itself and its version in every answer's Server header: a gift to
# whoever looks for a known flaw. Both listeners answer with this name instead.
SERVER_NAME: Final = "vibes-bridge"


async def _name_server(_request: web.Request, response: web.StreamResponse) -> None:
    response.headers[hdrs.SERVER] = SERVER_NAME


def error_response(status: int) -> web.Response:
    """``{"error": "<phrase>"}``: the status's standard phrase, nothing from the request."""
    try:
        phrase = HTTPStatus(status).phrase.lower()
    except ValueError:
        phrase = "error"
    response = web.json_response({"error": phrase}, status=status)
    response.headers[hdrs.SERVER] = SERVER_NAME  # no application hook runs for these
    response.force_close()
    return response


class GuardedRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, gated at accept, with its error answer and log made safe."""

    def __init__(
        self, manager: web.Server, *, gate: ConnectionGate, events: ListenerEvents, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._gate = gate
        self._events = events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._gate.admit(self, transport):
            # Nothing has been read yet: data_received ignores bytes once closing.
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._gate.release(self)
        super().connection_lost(exc)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A fixed answer instead of aiohttp's text; ``message`` quotes the request, unused."""
        if request.writer.output_size > 0:
            # As aiohttp does: an answer has begun, so only closing is left.
            raise ConnectionError("an answer was already being sent")
        if isinstance(exc, HttpProcessingError):
            self._events.malformed()
            log.warning("refused a malformed request", extra={"problem": type(exc).__name__})
            return error_response(HTTPStatus.BAD_REQUEST)
        if exc is not None:
            log.error("a request failed inside the listener: %s", describe(exc))
        return error_response(status)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's other error logs, with the exception's class but never its text."""
        exc = kwargs.get("exc_info")
        detail = describe(exc) if isinstance(exc, BaseException) else "no exception"
        template = str(args[0]) if args else "aiohttp error"
        log.error("aiohttp: %s (%s)", template.split(" %", 1)[0], detail)


class GuardedServer(web.Server):
    """aiohttp's low-level server, making :class:`GuardedRequestHandler` connections."""

    def __init__(
        self, *args: Any, gate: ConnectionGate, events: ListenerEvents, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate
        self._events = events

    def __call__(self) -> web.RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, gate=self._gate, events=self._events, **self._kwargs
        )


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` serving the application through :class:`GuardedServer`."""

    def __init__(
        self,
        app: web.Application,
        bounds: ListenerBounds,
        events: ListenerEvents,
        *,
        peer_allowed: PeerCheck | None = None,
    ) -> None:
        app.on_response_prepare.append(_name_server)
        super().__init__(app, access_log=None, handle_signals=False, **bounds.runner_options())
        self.bounds = bounds
        self.gate = ConnectionGate(bounds.max_connections, events, peer_allowed)
        self._events = events

    async def _make_server(self) -> web.Server:
        # aiohttp builds the application's server (running its start-up hooks);
        # the same handler, factory and options then go to our server class.
        server = await super()._make_server()
        return GuardedServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            gate=self.gate,
            events=self._events,
            **server._kwargs,
        )


class BoundedSite(web.TCPSite):
    """``web.TCPSite`` with a bound on the TLS handshake, which aiohttp does not pass on.

    A client that connects and never completes the handshake never reaches the
    request handler (asyncio creates it after the handshake), so this is the
    only bound on it.
    """

    def __init__(
        self,
        runner: GuardedAppRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._handshake_timeout = runner.bounds.tls_handshake_timeout_seconds

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=(
                self._handshake_timeout if self._ssl_context is not None else None
            ),
            backlog=self._backlog,
        )
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]


async def serve(
    runner: GuardedAppRunner, host: str, port: int, tls: ssl.SSLContext | None = None
) -> tuple[str, int]:
    """Set up, bind and serve; the bound ``(host, port)`` (``port: 0`` takes a free one)."""
    await runner.setup()
    site = BoundedSite(runner, host, port, ssl_context=tls)
    await site.start()
    addresses = runner.addresses
    bound_host, bound_port = addresses[0][:2] if addresses else (host, port)
    return str(bound_host), int(bound_port)
