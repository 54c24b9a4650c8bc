"""The management port: ``/metrics``, ``/healthz`` and ``/readyz``.

aiohttp, because the simulator already brings it and it serves these three
routes on the bridge's own asyncio loop for almost nothing. ``port: 0`` takes a
free port; the address actually bound is logged and returned, so tests and
several bridges on one machine never collide. Connections, request heads and
bodies are bounded and a request too broken to reach a route gets a fixed
answer (``bridge.service.listener``); every request is counted by answer.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.metrics import CONTENT_TYPE, BridgeMetrics
from bridge.service.health import Health
from bridge.service.listener import (
    MANAGEMENT_BOUNDS,
    GuardedAppRunner,
    ListenerBounds,
    Refusal,
    serve,
)

log = logging.getLogger(__name__)

LISTENER: Final = "management"
MALFORMED: Final = "malformed"
OTHER: Final = "other"
# The ``answer`` label: a fixed word per status, so the set stays bounded.
_ANSWERS: Final = {200: "ok", 503: "unavailable", 404: "not_found", 405: "method_not_allowed"}
ANSWERS: Final = (*_ANSWERS.values(), MALFORMED, OTHER)


class ManagementServer:
    """Serves the three routes until :meth:`stop`."""

    def __init__(
        self, metrics: BridgeMetrics, health: Health, bounds: ListenerBounds = MANAGEMENT_BOUNDS
    ) -> None:
        self._metrics = metrics
        self._health = health
        app = web.Application(middlewares=[self._count])
        app.router.add_get("/metrics", self._metrics_route)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = GuardedAppRunner(app, bounds, _ManagementEvents(metrics))

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve; the bound ``(host, port)``."""
        bound_host, bound_port = await serve(self._runner, host, port)
        self._metrics.listeners.management_started(ANSWERS)
        self._metrics.listeners.started(LISTENER, Refusal)
        log.info(
            "management server listening",
            extra={"address": f"http://{bound_host}:{bound_port}", "port": bound_port},
        )
        return bound_host, bound_port

    async def stop(self) -> None:
        await self._runner.cleanup()

    @web.middleware
    async def _count(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count each answer, the router's 404 and 405 included (they arrive as exceptions)."""
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._metrics.listeners.management_answered(_ANSWERS.get(exc.status, OTHER))
            raise
        self._metrics.listeners.management_answered(_ANSWERS.get(response.status, OTHER))
        return response

    async def _metrics_route(self, _request: web.Request) -> web.Response:
        self._metrics.pipeline.ready(not self._health.readiness_problems())
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _answer(self._health.liveness_problems())

    async def _readyz(self, _request: web.Request) -> web.Response:
        problems = self._health.readiness_problems()
        self._metrics.pipeline.ready(not problems)
        return _answer(problems)


class _ManagementEvents:
    """What the listener reports, as the management port's metrics."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics

    def malformed(self) -> None:
        self._metrics.listeners.management_answered(MALFORMED)

    def refused(self, reason: Refusal) -> None:
        self._metrics.listeners.refused(LISTENER, reason)


def _answer(problems: list[str]) -> web.Response:
    if problems:
        return web.json_response({"status": "failing", "problems": problems}, status=503)
    return web.json_response({"status": "ok"})
