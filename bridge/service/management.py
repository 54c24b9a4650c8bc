"""The management port: ``/metrics``, ``/healthz`` and ``/readyz``.

aiohttp, because the simulator already brings it and it serves these three
routes on the bridge's own asyncio loop for almost nothing. ``port: 0`` takes a
free port; the address actually bound is logged and returned, so tests and
several bridges on one machine never collide.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bridge.metrics import CONTENT_TYPE, BridgeMetrics
from bridge.service.health import Health

log = logging.getLogger(__name__)


class ManagementServer:
    """Serves the three routes until :meth:`stop`."""

    def __init__(self, metrics: BridgeMetrics, health: Health) -> None:
        self._metrics = metrics
        self._health = health
        app = web.Application()
        app.router.add_get("/metrics", self._metrics_route)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and serve; the bound ``(host, port)``."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        bound_host, bound_port = addresses[0][:2] if addresses else (host, port)
        log.info(
            "management server listening",
            extra={"address": f"http://{bound_host}:{bound_port}", "port": bound_port},
        )
        return str(bound_host), int(bound_port)

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _metrics_route(self, _request: web.Request) -> web.Response:
        self._metrics.ready.set(0 if self._health.readiness_problems() else 1)
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, _request: web.Request) -> web.Response:
        return _answer(self._health.liveness_problems())

    async def _readyz(self, _request: web.Request) -> web.Response:
        problems = self._health.readiness_problems()
        self._metrics.ready.set(0 if problems else 1)
        return _answer(problems)


def _answer(problems: list[str]) -> web.Response:
    if problems:
        return web.json_response({"status": "failing", "problems": problems}, status=503)
    return web.json_response({"status": "ok"})
