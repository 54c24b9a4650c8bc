"""Start, announce and stop the simulator.

The socket is bound here rather than by aiohttp so that ``--port 0`` can report
the port the kernel picked: callers (tests, the demo) read the
``listening on http://HOST:PORT`` line instead of racing for a free port.
SIGTERM and SIGINT end the run cleanly with exit status 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import signal
import socket
from collections.abc import Callable
from typing import Final

from aiohttp import web

from bridge.sim.app import Simulator, build_app
from bridge.sim.config import SimConfig
from bridge.sim.protocol import EnvelopeAppRunner

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S: Final = 5.0
"""Longest wait for in-flight requests at exit; held timeout faults are released first."""


class ListenError(Exception):
    """The address cannot be listened on (in use, not local, unknown name)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6 literal or name)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a bound socket, with brackets for IPv6."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    config: SimConfig,
    sock: socket.socket,
    on_listening: Callable[[str], None],
    stop: asyncio.Event | None = None,
    *,
    handle_signals: bool = True,
) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT (or ``stop`` is set), then clean up.

    An embedding caller (a test running the simulator on a thread's loop, where
    signal handlers cannot be installed) passes ``stop`` and
    ``handle_signals=False``.
    """
    simulator = Simulator(config)
    runner = EnvelopeAppRunner(
        build_app(simulator),
        on_malformed=simulator.count_malformed,
        access_log=None,  # per-request logging would cost more than the handler
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if handle_signals else ()
    try:
        site = web.SockSite(runner, sock, backlog=1024)
        await site.start()
        for signum in signals:
            loop.add_signal_handler(signum, stop.set)
        on_listening(url_of(sock))
        await stop.wait()
        log.info("stopping")
    finally:
        for signum in signals:
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(signum)
        await runner.cleanup()


def uvloop_available() -> bool:
    """Whether the optional, faster event loop is installed."""
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when asked for, else asyncio's own loop.

    Opt-in rather than automatic: the gain measured small (docs/simulator.md),
    and a default that changed with what happens to be installed would make
    the same command behave differently on a developer's machine and in CI.
    """
    if use_uvloop:
        factory: Callable[[], asyncio.AbstractEventLoop] = importlib.import_module(
            "uvloop"
        ).new_event_loop
        return factory
    return asyncio.new_event_loop


def run(config: SimConfig, on_listening: Callable[[str], None], use_uvloop: bool = False) -> None:
    """Bind, serve until a stop signal, return normally (the caller exits 0).

    ``asyncio.Runner`` cancels whatever aiohttp leaves pending (a connection
    handler whose socket a drop fault closed) before closing the loop.
    Raises ``ListenError`` when the address cannot be bound.
    """
    sock = bind(config.host, config.port)
    try:
        with asyncio.Runner(loop_factory=loop_factory(use_uvloop)) as runner:
            runner.run(serve(config, sock, on_listening))
    finally:
        sock.close()
