"""The event-processed callback receiver: store and forward inside Vibes' two seconds.

Its own aiohttp listener, apart from the management port, because this one faces
the internet (through an ingress) and Vibes signs nothing: what protects it is an
unguessable token in the path, an allow-list of source networks (Vibes' published
addresses by default), and a body size limit. Each request is answered only once
its record is acknowledged by the broker (idempotent producer, ``acks=all``):

- a valid callback goes to ``callbacks.topic``, keyed by the original ``event_id``,
  value the body as received, headers for routing without parsing;
- a body that is not a callback is acknowledged with 200 (Vibes would retry it
  forever otherwise) and kept on the dead-letter topic as ``invalid_callback``;
- a record the broker does not acknowledge before the deadline gets 503, so that
  Vibes retries and nothing is lost.

Checks run cheapest and least revealing first: a stranger learns nothing about the
path, and no body is read before the path and size are right. Without trusted
proxies the allow-list is applied at accept, so a stranger's connection is closed
before a byte of it is read; connections, request heads and bodies are bounded in
time and number, and a request too broken to reach a route gets a fixed answer
(``bridge.service.listener``; docs/running.md, "Listener bounds and label sets").
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import ssl
import time
from enum import StrEnum
from typing import Final, Protocol

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.config.model import CallbackSettings
from bridge.dead_letters import (
    RULE_HEADER,
    SOURCE_OFFSET_HEADER,
    SOURCE_PARTITION_HEADER,
    SOURCE_TIMESTAMP_HEADER,
    SOURCE_TOPIC_HEADER,
    Headers,
    invalid_callback_letter,
)
from bridge.errors import KafkaFailure
from bridge.kafka.sizes import headers_size
from bridge.metrics import BridgeMetrics
from bridge.service.listener import (
    CALLBACK_BOUNDS,
    GuardedAppRunner,
    ListenerBounds,
    Refusal,
    serve,
)
from bridge.tracing import NO_TRACING, Tracing
from bridge.vibes.callbacks import (
    VIBES_RANGES,
    InvalidCallback,
    Network,
    ProcessedCallback,
    bounded_labels,
    is_allowed_address,
    label_event_types,
    parse_callback,
    record_timestamp_ms,
    source_coordinates,
)
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH

log = logging.getLogger(__name__)

CALLBACK_ID_HEADER: Final = "vibes.callback.id"
CALLBACK_TYPE_HEADER: Final = "vibes.callback.type"
EVENT_TYPE_HEADER: Final = "vibes.event_type"
ACTION_TYPE_HEADER: Final = "vibes.action.type"
ACTION_STATUS_HEADER: Final = "vibes.action.status"
ACTION_REASON_HEADER: Final = "vibes.action.status_reason"
_COORDINATE_HEADERS: Final = {
    "rule": RULE_HEADER,
    "topic": SOURCE_TOPIC_HEADER,
    "partition": SOURCE_PARTITION_HEADER,
    "offset": SOURCE_OFFSET_HEADER,
    "timestamp": SOURCE_TIMESTAMP_HEADER,
}
_HEADER_VALUE_LIMIT: Final = 256
LISTENER: Final = "callbacks"
# How a body can break off mid-way: broken framing (chunked, Content-Length), or
# the client closing before the last byte.
_BODY_ERRORS: Final = (web.RequestPayloadError, HttpProcessingError, ConnectionError)


class Answer(StrEnum):
    """Every way a request can end; the ``answer`` label of the request counter."""

    STORED = "stored"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    FORBIDDEN = "forbidden"
    TOO_LARGE = "too_large"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAVAILABLE = "unavailable"
    MALFORMED = "malformed"
    TIMEOUT = "timeout"


class RecordSink(Protocol):
    """Where records go (``bridge.kafka.producer.AcknowledgedProducer``)."""

    def produce(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers
    ) -> asyncio.Future[None]: ...


class CallbackReceiver:
    """Serves ``POST {path}/{token}`` until :meth:`stop`."""

    def __init__(
        self,
        settings: CallbackSettings,
        token: str,
        sink: RecordSink,
        metrics: BridgeMetrics,
        *,
        dead_letter_topic: str,
        tls: ssl.SSLContext | None = None,
        event_types: frozenset[str] = frozenset(),
        bounds: ListenerBounds = CALLBACK_BOUNDS,
        storable_body_bytes: int | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self._settings = _within_storable(settings, storable_body_bytes)
        self._tracing = tracing
        self._path = f"{settings.path.rstrip('/')}/{token}"
        self._sink = sink
        self._metrics = metrics
        self._dead_letter_topic = dead_letter_topic
        self._tls = tls
        self._allowed = _parse_networks(settings.allow_from or VIBES_RANGES)
        self._proxies = _parse_networks(settings.trusted_proxies)
        self._event_types = label_event_types(event_types)
        self._body_timeout = bounds.body_timeout_seconds
        # aiohttp refuses a larger body itself; the Content-Length check answers first.
        app = web.Application(client_max_size=self._settings.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Behind trusted proxies the peer is the proxy: the client's address is
        # only known from X-Forwarded-For, after the headers (see _refusal).
        peer_allowed = None if self._proxies else self._peer_allowed
        self._runner = GuardedAppRunner(
            app, bounds, _ReceiverEvents(metrics), peer_allowed=peer_allowed
        )

    def use_event_types(self, event_types: frozenset[str]) -> None:
        """The rules' declared event types after a reload: the ``event_type`` label's set."""
        self._event_types = label_event_types(event_types)

    async def start(self) -> tuple[str, int]:
        """Bind and serve; the bound ``(host, port)`` (the token is never logged)."""
        host, port = await serve(self._runner, self._settings.host, self._settings.port, self._tls)
        self._metrics.callbacks.receiver_started(Answer)
        self._metrics.listeners.started(LISTENER, Refusal)
        scheme = "https" if self._tls is not None else "http"
        log.info(
            "callback receiver listening",
            extra={
                "address": f"{scheme}://{host}:{port}{self._settings.path}/<token>",
                "port": port,
                "topic": self._settings.topic,
            },
        )
        return str(host), int(port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    def apply(self, settings: CallbackSettings) -> None:
        """Take a reloaded file's allow-list and trusted proxies, for the next request.

        Who may call is what an operator narrows in a hurry, so it applies live;
        the rest of ``callbacks:`` is built into the listener and needs a restart.
        """
        self._allowed = _parse_networks(settings.allow_from or VIBES_RANGES)
        self._proxies = _parse_networks(settings.trusted_proxies)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        refusal = self._refusal(request)
        if refusal is not None:
            answer, status = refusal
            self._metrics.callbacks.answered(answer)
            return web.Response(status=status)
        try:
            async with asyncio.timeout(self._body_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._cut(Answer.TOO_LARGE, 413)
        except TimeoutError:
            return self._cut(Answer.TIMEOUT, 408)
        except _BODY_ERRORS:
            log.warning("refused a callback whose body is not valid HTTP")
            return self._cut(Answer.MALFORMED, 400)
        answer = await self._store(body, started)
        self._metrics.callbacks.answered(answer, time.monotonic() - started)
        return web.Response(status=503 if answer is Answer.UNAVAILABLE else 200)

    def _cut(self, answer: Answer, status: int) -> web.Response:
        """A fixed empty answer, and the connection closed: the rest of its bytes are unread."""
        self._metrics.callbacks.answered(answer)
        response = web.Response(status=status)
        response.force_close()
        return response

    def _peer_allowed(self, peer: str) -> bool:
        return is_allowed_address(peer, self._allowed)

    def _refusal(self, request: web.Request) -> tuple[Answer, int] | None:
        """What is decided before reading the body: source, path, method, declared size."""
        if not is_allowed_address(self._client_address(request), self._allowed):
            return Answer.FORBIDDEN, 403
        if not hmac.compare_digest(request.path.encode(), self._path.encode()):
            return Answer.NOT_FOUND, 404
        if request.method not in (hdrs.METH_POST, hdrs.METH_PUT):  # Vibes allows either
            return Answer.METHOD_NOT_ALLOWED, 405
        length = request.content_length
        if length is not None and length > self._settings.max_body_bytes:
            return Answer.TOO_LARGE, 413
        return None

    def _client_address(self, request: web.Request) -> str:
        """The peer, or, behind a trusted proxy, the nearest untrusted X-Forwarded-For entry.

        Walked from the right: each proxy appends the address it saw, so only the
        entries added by proxies we trust can be believed; the first one they did
        not add is the client. Off (peer only) unless ``trusted_proxies`` is set.
        """
        peer = request.remote or ""
        if not self._proxies or not is_allowed_address(peer, self._proxies):
            return peer
        hops = [
            hop.strip()
            for value in request.headers.getall(hdrs.X_FORWARDED_FOR, [])
            for hop in value.split(",")
        ]
        for hop in reversed(hops):
            if not is_allowed_address(hop, self._proxies):
                return hop
        return hops[0] if hops else peer

    async def _store(self, body: bytes, started: float) -> Answer:
        try:
            callback = parse_callback(body)
        except InvalidCallback as exc:
            log.warning("invalid callback acknowledged and dead-lettered", extra={"why": str(exc)})
            letter = invalid_callback_letter(body, str(exc))
            future = self._sink.produce(self._dead_letter_topic, None, body, letter.headers)
            if await self._acknowledged(future, started):
                self._metrics.pipeline.dead_lettered(letter.reason)
                return Answer.INVALID
            return Answer.UNAVAILABLE
        future = self._sink.produce(
            self._settings.topic, callback.event_id.encode(), body, callback_headers(callback)
        )
        if not await self._acknowledged(future, started):
            return Answer.UNAVAILABLE
        labels = bounded_labels(callback, self._event_types)
        self._metrics.callbacks.stored(labels, record_timestamp_ms(callback))
        self._tracing.callback_received(callback, labels)
        return Answer.STORED

    async def _acknowledged(self, future: asyncio.Future[None], started: float) -> bool:
        remaining = self._settings.store_timeout_seconds - (time.monotonic() - started)
        try:
            await asyncio.wait_for(future, max(0.0, remaining))
        except TimeoutError:
            log.warning("callback not stored in time; answered 503 so that Vibes retries")
            return False
        except KafkaFailure as exc:  # ProduceFailed: the broker did not take the record
            log.warning("callback not stored; answered 503", extra={"kafka_error": str(exc)})
            return False
        return True


class _ReceiverEvents:
    """What the listener reports, as this receiver's metrics."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics

    def malformed(self) -> None:
        self._metrics.callbacks.answered(Answer.MALFORMED)

    def refused(self, reason: Refusal) -> None:
        self._metrics.listeners.refused(LISTENER, reason)


def callback_headers(callback: ProcessedCallback) -> Headers:
    """The record's headers: what a consumer routes on, without parsing the value."""
    values = {
        CALLBACK_TYPE_HEADER: "event_processed",
        EVENT_TYPE_HEADER: callback.event_type,
        ACTION_TYPE_HEADER: callback.action_type,
        ACTION_STATUS_HEADER: callback.status,
    }
    if callback.status_reason is not None:
        values[ACTION_REASON_HEADER] = callback.status_reason
    if callback.callback_id is not None:
        values[CALLBACK_ID_HEADER] = callback.callback_id
    for name, value in source_coordinates(callback).items():
        values[_COORDINATE_HEADERS[name]] = value
    return [(name, value[:_HEADER_VALUE_LIMIT].encode()) for name, value in values.items()]


def largest_callback_headers() -> int:
    """An upper bound of the key and header bytes of one stored callback (see
    :func:`callback_headers`): what the topic's limit must leave beside the body."""
    names = (
        CALLBACK_TYPE_HEADER,
        EVENT_TYPE_HEADER,
        ACTION_TYPE_HEADER,
        ACTION_STATUS_HEADER,
        ACTION_REASON_HEADER,
        CALLBACK_ID_HEADER,
    )
    longest = [
        (name, b"x" * _HEADER_VALUE_LIMIT) for name in (*names, *_COORDINATE_HEADERS.values())
    ]
    return MAX_EVENT_ID_LENGTH + headers_size(longest)


def _within_storable(settings: CallbackSettings, storable: int | None) -> CallbackSettings:
    """``settings`` with ``max_body_bytes`` lowered to what the topics can store, with a
    warning: a larger body is then answered 413 at once instead of failing to store."""
    if storable is None or storable >= settings.max_body_bytes:
        return settings
    log.warning(
        "callbacks.max_body_bytes is above what the callback and dead-letter topics can store; "
        "larger bodies are refused with 413",
        extra={"max_body_bytes": settings.max_body_bytes, "storable_bytes": storable},
    )
    return settings.model_copy(update={"max_body_bytes": storable})


def _parse_networks(values: list[str] | tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)
