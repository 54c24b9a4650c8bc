"""Requests aiohttp cannot parse: answered in the Vibes envelope, counted, never echoed.

aiohttp answers a request it cannot parse (a bad request line, a header with
a control character, a broken chunked body) by itself, before any route or
middleware runs: in plain text that quotes the offending bytes, after logging
them with a traceback. Those bytes can be the ``Authorization`` header, that
is the Basic credentials, so both the answer and the log would carry them.
aiohttp has no public hook for this (aio-libs/aiohttp#3287 is open), so the
one method that builds that answer, ``RequestHandler.handle_error``, is
overridden here, and a runner hands aiohttp's server our request handler.
tests/sim/test_malformed.py holds this to account on every aiohttp upgrade.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import (
    BadStatusLine,
    ContentLengthError,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    TransferEncodingError,
)

from bridge.sim.responses import errors_response

log = logging.getLogger(__name__)

MalformedHook = Callable[[], None]
"""Called once per request refused as malformed, so the simulator can count it."""

NOT_HTTP: Final = "the request is not valid HTTP"
BODY_FRAMING: Final = "the body's framing is not valid HTTP (Content-Length or chunked encoding)"
INTERNAL_ERROR: Final = "internal error in the simulator"

# Most specific first: BadHttpMethod is a BadStatusLine, and so on.
_MALFORMED_MESSAGES: Final[tuple[tuple[type[HttpProcessingError], str], ...]] = (
    (LineTooLong, "the request line or a header is too long"),
    (InvalidURLError, "the request target is not a valid URL"),
    (BadStatusLine, "the request line is not valid HTTP"),
    (InvalidHeader, "a header is not valid HTTP"),
    (ContentLengthError, BODY_FRAMING),
    (TransferEncodingError, BODY_FRAMING),
)


def malformed_message(exc: BaseException | None) -> str:
    """A fixed sentence for what was wrong: never the exception's text, which quotes bytes."""
    for kind, message in _MALFORMED_MESSAGES:
        if isinstance(exc, kind):
            return message
    return NOT_HTTP


def describe(exc: BaseException) -> str:
    """The exception's class and where it was raised, without its message."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def _phrase(status: int) -> str:
    """``gateway timeout`` for 504; aiohttp answers 504 itself when a handler times out."""
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return NOT_HTTP


class EnvelopeRequestHandler(web.RequestHandler):
    """aiohttp's connection handler, with its error answer and error log made safe."""

    def __init__(self, manager: web.Server, *, on_malformed: MalformedHook, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._on_malformed = on_malformed

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The envelope instead of aiohttp's plain text.

        ``message`` is aiohttp's text for the client, which quotes the request's
        bytes: it is never used.
        """
        if request.writer.output_size > 0:
            # As aiohttp does: an answer has begun, so only closing is left.
            raise ConnectionError("an answer was already being sent")
        if isinstance(exc, HttpProcessingError):
            self._on_malformed()
            text = malformed_message(exc)
            log.warning("refused a malformed request: %s", text)
        elif exc is not None:
            text = INTERNAL_ERROR
            log.error("a request failed inside the simulator: %s", describe(exc))
        else:
            text = _phrase(status)
            log.warning("answered %d: %s", status, text)
        response = errors_response(status, [text])
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's other error logs, with the exception's class but never its text."""
        exc = kwargs.get("exc_info")
        detail = describe(exc) if isinstance(exc, BaseException) else "no exception"
        template = str(args[0]) if args else "aiohttp error"
        log.error("aiohttp: %s (%s)", template.split(" %", 1)[0], detail)


class EnvelopeServer(web.Server):
    """aiohttp's low-level server, making :class:`EnvelopeRequestHandler` connections."""

    def __init__(self, *args: Any, on_malformed: MalformedHook, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_malformed = on_malformed

    def __call__(self) -> web.RequestHandler:
        return EnvelopeRequestHandler(
            self, loop=self._loop, on_malformed=self._on_malformed, **self._kwargs
        )


class EnvelopeAppRunner(web.AppRunner):
    """``web.AppRunner`` serving the application through :class:`EnvelopeServer`."""

    def __init__(self, app: web.Application, *, on_malformed: MalformedHook, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._on_malformed = on_malformed

    async def _make_server(self) -> web.Server:
        # aiohttp builds the application's server (running its start-up hooks);
        # the same handler, factory and options then go to our server class.
        server = await super()._make_server()
        return EnvelopeServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            on_malformed=self._on_malformed,
            **server._kwargs,
        )
