"""The HTTP face of the simulator: the Event API route and the ``/_sim`` controls.

``POST /companies/{company_key}/events`` runs its checks in the order a real
service behind a load balancer would meet them, and each answer lands in
exactly one stats counter:

1. latency (``latency_ms`` + jitter), then one fault draw: drop, timeout, 500, 503;
   then the company key's outage if one is set (``/_sim/companies/{key}/outage``):
   401, 403, 429, 500 or 503 for that key only;
2. Basic auth (401), then the company key (404);
3. the company's token bucket (429 with ``Retry-After``);
4. content type (415), size (413), JSON (400), the entity rules (400);
5. an ``event_id`` matching the ``/_sim/failing`` pattern: 503 (a key stuck in retries);
6. the ``event_id`` duplicate check: 200 either way, recorded ``sent`` or ``duplicate``.

Requests too broken to reach a route (``protocol``), and events requests whose
body breaks off mid-way, are ``malformed``; an exception in the handler is an
``internal_error`` (a simulator bug: the counter should stay at zero).

Every non-2xx answer carries the ``{"errors": [...]}`` envelope, including the
router's own 404 and 405, so a client never has to parse two error shapes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from bridge.sim.auth import BasicAuth
from bridge.sim.callbacks import CallbackSender, RegistrationError, Registrations, public
from bridge.sim.config import SimConfig
from bridge.sim.faults import (
    CompanyOutage,
    FailingEvents,
    Fault,
    FaultPlan,
    FaultSettings,
    SettingsError,
)
from bridge.sim.protocol import BODY_FRAMING, INTERNAL_ERROR, describe
from bridge.sim.ratelimit import Clock, RateLimiter
from bridge.sim.responses import errors_response, json_response
from bridge.sim.state import DUPLICATE, SENT, EventLog, RecordedEvent, Stats
from bridge.vibes.api import EVENTS_PATH_TEMPLATE, JSON_CONTENT_TYPE
from bridge.vibes.callbacks import CALLBACKS_PATH_TEMPLATE
from bridge.vibes.entity import entity_problems

log = logging.getLogger(__name__)

# How a body can break off mid-way: a framing error (raised by the parser or
# wrapped by aiohttp), or the client closing before the last byte.
_BODY_ERRORS: Final = (web.RequestPayloadError, HttpProcessingError, ConnectionError)


class _BodyRefused(Exception):
    """A control request whose body is not JSON: ``answer`` says why."""

    def __init__(self, answer: web.Response) -> None:
        super().__init__(answer.status)
        self.answer = answer


_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Basic realm="Vibes Event API"'}
_TRACEPARENT: Final = "traceparent"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """The simulated service's state and request handlers, one per process."""

    def __init__(
        self,
        config: SimConfig,
        *,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config
        self.stats = Stats()
        self.events = EventLog(config.max_events, config.max_event_ids)
        self._companies = frozenset(config.company_keys)
        self._auth = BasicAuth(config.username, config.password)
        self._company_auth = {
            key: BasicAuth(username, password)
            for key, (username, password) in config.company_users.items()
        }
        self._rng = rng if rng is not None else random.Random(config.seed)
        self._clock = clock
        self._stopping = asyncio.Event()
        self._plan = FaultPlan(config.faults, self._rng)
        self._limiter = self._new_limiter(config.faults)
        self.failing = FailingEvents()
        self._outages: dict[str, CompanyOutage] = {}
        self.registrations = Registrations()
        self.callbacks = CallbackSender(config.callbacks, self._rng)

    @property
    def settings(self) -> FaultSettings:
        """The run-time knobs now in force."""
        return self._plan.settings

    def apply(self, settings: FaultSettings) -> None:
        """Swap in new knobs; the buckets restart only when the limit itself changed."""
        old = self._plan.settings
        self._plan = FaultPlan(settings, self._rng)
        if (old.rate_limit, old.rate_limit_burst) != (
            settings.rate_limit,
            settings.rate_limit_burst,
        ):
            self._limiter = self._new_limiter(settings)

    def reset(self) -> None:
        """Forget events, counters, seen ids, spent rate budget and the failing pattern;
        keep the knobs."""
        self.failing = FailingEvents()
        self.events.clear()
        for name in self.stats.as_json():
            setattr(self.stats, name, 0)
        self._limiter = self._new_limiter(self._plan.settings)

    def _new_limiter(self, settings: FaultSettings) -> RateLimiter | None:
        if settings.rate_limit <= 0:
            return None
        return RateLimiter(
            settings.rate_limit, settings.rate_limit_burst, self._companies, self._clock
        )

    def count_malformed(self) -> None:
        """A request too broken to reach a route (see ``protocol``)."""
        self.stats.received += 1
        self.stats.malformed += 1

    # --- the Event API ----------------------------------------------------------

    async def post_event(self, request: web.Request) -> web.StreamResponse:
        """Count the request, answer it; whatever goes wrong still lands in one counter."""
        stats = self.stats
        stats.received += 1
        try:
            return await self._answer_event(request)
        except _BODY_ERRORS:
            stats.malformed += 1
            response = errors_response(400, [BODY_FRAMING])
            response.force_close()  # the rest of the stream cannot be trusted
            return response
        except Exception as exc:
            stats.internal_errors += 1
            log.error("an events request failed inside the simulator: %s", describe(exc))
            return errors_response(500, [INTERNAL_ERROR])

    async def _answer_event(self, request: web.Request) -> web.StreamResponse:
        """The hot path: kept flat and allocation-light for the throughput target."""
        stats = self.stats
        plan = self._plan
        if plan.has_latency:
            await asyncio.sleep(plan.delay_s())
        if plan.has_faults:
            fault = plan.choose()
            if fault is not None:
                return await self._inject(request, fault, plan.settings.timeout_hold_s)
        company_key = request.match_info["company_key"]
        refusal = self._refusal(request, company_key)
        if refusal is not None:
            return refusal
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            stats.rejected += 1
            return self._too_large()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            stats.rejected += 1
            return errors_response(400, ["the body is not valid JSON"])
        problems = entity_problems(body)
        if problems:
            stats.rejected += 1
            return errors_response(400, problems)
        event_id = body.get("event_id")
        if event_id is None:
            event_id = str(uuid.uuid4())
        elif self.failing.fails(event_id, self._clock()):
            stats.faults += 1
            stats.faults_targeted += 1
            return errors_response(503, ["service unavailable (injected for this event)"])
        if self.events.first_sighting(company_key, event_id):
            outcome = SENT
            stats.sent += 1
        else:
            outcome = DUPLICATE
            stats.duplicates += 1
        traceparent = request.headers.get(_TRACEPARENT)
        self.events.record(
            RecordedEvent(time.time(), company_key, outcome, event_id, raw, traceparent)
        )
        if outcome == SENT and self.registrations.any:
            now = datetime.now(UTC)
            receivers = self.registrations.receiving(company_key, body["event_type"], now)
            self.callbacks.event_accepted(receivers, {**body, "event_id": event_id})
        return web.Response(
            body=orjson.dumps({"event_id": event_id}), content_type=JSON_CONTENT_TYPE
        )

    def _refusal(self, request: web.Request, company_key: str) -> web.Response | None:
        """Everything decided from the headers alone, before reading a byte of the body."""
        stats = self.stats
        if self._outages:
            outage = self._outages.get(company_key)
            if outage is not None:
                return self._outage_answer(outage)
        if not self._auth_of(company_key).allows(request.headers.get(hdrs.AUTHORIZATION)):
            stats.unauthorized += 1
            return errors_response(
                401, ["missing or wrong Basic credentials"], _UNAUTHORIZED_HEADERS
            )
        if company_key not in self._companies:
            stats.rejected += 1
            return errors_response(404, ["unknown company key"])
        limiter = self._limiter
        if limiter is not None:
            retry_after = limiter.retry_after(company_key)
            if retry_after:
                stats.rate_limited += 1
                return errors_response(
                    429, ["rate limit exceeded"], {hdrs.RETRY_AFTER: str(retry_after)}
                )
        # The exact header is the common case; parsing it (charset etc.) only when not.
        if (
            request.headers.get(hdrs.CONTENT_TYPE) != JSON_CONTENT_TYPE
            and request.content_type != JSON_CONTENT_TYPE
        ):
            stats.rejected += 1
            return errors_response(415, ["Content-Type must be application/json"])
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            stats.rejected += 1
            return self._too_large()
        return None

    def _outage_answer(self, outage: CompanyOutage) -> web.Response:
        """The company's outage, counted where the same answer would be counted anyway."""
        stats = self.stats
        status = outage.status
        if status in (401, 403):
            stats.unauthorized += 1
            return errors_response(status, ["credentials rejected (injected)"])
        if status == 429:
            stats.rate_limited += 1
            retry_after = f"{outage.retry_after_s:g}"
            return errors_response(
                429, ["rate limit exceeded (injected)"], {hdrs.RETRY_AFTER: retry_after}
            )
        stats.faults += 1
        if status == 503:
            stats.faults_503 += 1
        else:
            stats.faults_500 += 1
        return errors_response(status, ["company unavailable (injected)"])

    def _too_large(self) -> web.Response:
        limit = self.config.max_body_bytes
        return errors_response(413, [f"the body is larger than {limit} bytes"])

    async def _json_body(self, request: web.Request) -> object:
        """A control request's JSON body; raises _BodyRefused with the answer otherwise."""
        try:
            return orjson.loads(await request.read())
        except web.HTTPRequestEntityTooLarge:
            raise _BodyRefused(self._too_large()) from None
        except _BODY_ERRORS:
            raise _BodyRefused(errors_response(400, [BODY_FRAMING])) from None
        except orjson.JSONDecodeError:
            raise _BodyRefused(errors_response(400, ["the body is not valid JSON"])) from None

    async def _inject(
        self, request: web.Request, fault: Fault, hold_s: float
    ) -> web.StreamResponse:
        """Misbehave as chosen; the request counts as a fault whatever else it held."""
        stats = self.stats
        stats.faults += 1
        if fault is Fault.ERROR_503:
            stats.faults_503 += 1
            return errors_response(503, ["service unavailable (injected)"])
        if fault is Fault.ERROR_500:
            stats.faults_500 += 1
            return errors_response(500, ["internal server error (injected)"])
        if fault is Fault.TIMEOUT:
            stats.faults_timeout += 1
            try:
                await asyncio.wait_for(self._stopping.wait(), hold_s)
            except TimeoutError:
                return errors_response(504, ["gateway timeout (injected)"])
            # Shutting down: give up on the held request rather than delay the exit.
        else:
            stats.faults_drop += 1
        return _drop(request)

    # --- the /_sim controls ---------------------------------------------------------

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        """Accepted events, oldest first."""
        return json_response(self.events.snapshot())

    async def get_stats(self, request: web.Request) -> web.StreamResponse:
        """The counters."""
        return json_response(self.stats.as_json())

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        """The run-time knobs."""
        return json_response(self.settings.as_json())

    async def post_faults(self, request: web.Request) -> web.StreamResponse:
        """Partial update of the knobs; any content type, so a bare ``curl -d`` works."""
        try:
            patch = await self._json_body(request)
        except _BodyRefused as refused:
            return refused.answer
        try:
            settings = self.settings.merged(patch)
        except SettingsError as exc:
            return errors_response(400, exc.problems)
        self.apply(settings)
        log.info("fault settings now %s", settings.as_json())
        return json_response(settings.as_json())

    async def get_failing(self, request: web.Request) -> web.StreamResponse:
        """The ``event_id`` pattern answered 503 now, and for how long."""
        return json_response(self.failing.as_json(self._clock()))

    async def post_failing(self, request: web.Request) -> web.StreamResponse:
        """Fail matching events from now on: ``{"event_id_pattern": "^k7-", "seconds": 60}``."""
        try:
            body = await self._json_body(request)
        except _BodyRefused as refused:
            return refused.answer
        now = self._clock()
        try:
            self.failing = FailingEvents.parse(body, now)
        except SettingsError as exc:
            return errors_response(400, exc.problems)
        log.info("failing events now %s", self.failing.as_json(now))
        return json_response(self.failing.as_json(now))

    async def delete_failing(self, request: web.Request) -> web.StreamResponse:
        """Stop failing chosen events."""
        self.failing = FailingEvents()
        log.info("failing events cleared")
        return json_response(self.failing.as_json(self._clock()))

    async def get_outage(self, request: web.Request) -> web.StreamResponse:
        """The company key's outage, ``{"status": 0}`` when none."""
        outage = self._outages.get(request.match_info["company_key"])
        return json_response({"status": 0} if outage is None else outage.as_json())

    async def post_outage(self, request: web.Request) -> web.StreamResponse:
        """Set (``{"status": 503}``) or end (``{"status": 0}``) one company key's outage."""
        company_key = request.match_info["company_key"]
        try:
            outage = CompanyOutage.parse(await self._json_body(request))
        except _BodyRefused as refused:
            return refused.answer
        except SettingsError as exc:
            return errors_response(400, exc.problems)
        if outage is None:
            self._outages.pop(company_key, None)
            log.info("outage of company key %s ended", company_key)
            return json_response({"status": 0})
        self._outages[company_key] = outage
        log.info("company key %s now answers %d", company_key, outage.status)
        return json_response(outage.as_json())

    async def post_reset(self, request: web.Request) -> web.StreamResponse:
        """Start a fresh run without restarting the process; answers the zeroed stats."""
        self.reset()
        log.info("events, stats and duplicate memory cleared")
        return json_response(self.stats.as_json())

    # --- the Callback API and its /_sim controls -----------------------------------

    def _auth_of(self, company_key: str) -> BasicAuth:
        """The company's own user, or the common one."""
        return self._company_auth.get(company_key, self._auth)

    def _api_refusal(self, request: web.Request) -> web.Response | None:
        auth = self._auth_of(request.match_info["company_key"])
        if not auth.allows(request.headers.get(hdrs.AUTHORIZATION)):
            return errors_response(
                401, ["missing or wrong Basic credentials"], _UNAUTHORIZED_HEADERS
            )
        if request.match_info["company_key"] not in self._companies:
            return errors_response(404, ["unknown company key"])
        return None

    async def create_callback(self, request: web.Request) -> web.StreamResponse:
        refusal = self._api_refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = await self._json_body(request)
        except _BodyRefused as refused:
            return refused.answer
        company_key = request.match_info["company_key"]
        try:
            entity = self.registrations.create(company_key, body, datetime.now(UTC))
        except RegistrationError as exc:
            return errors_response(exc.status, exc.problems)
        return json_response(public(entity), status=201)

    async def list_callbacks(self, request: web.Request) -> web.StreamResponse:
        refusal = self._api_refusal(request)
        if refusal is not None:
            return refusal
        listed = self.registrations.listed(request.match_info["company_key"], datetime.now(UTC))
        return json_response([public(entity) for entity in listed])

    async def get_callback(self, request: web.Request) -> web.StreamResponse:
        refusal = self._api_refusal(request)
        if refusal is not None:
            return refusal
        entity = self.registrations.get(
            request.match_info["company_key"], request.match_info["callback_id"]
        )
        if entity is None:
            return errors_response(404, ["no such callback"])
        return json_response(public(entity))

    async def delete_callback(self, request: web.Request) -> web.StreamResponse:
        refusal = self._api_refusal(request)
        if refusal is not None:
            return refusal
        entity = self.registrations.end(
            request.match_info["company_key"], request.match_info["callback_id"], datetime.now(UTC)
        )
        if entity is None:
            return errors_response(404, ["no such callback"])
        return json_response(public(entity))

    async def get_sent_callbacks(self, request: web.Request) -> web.StreamResponse:
        """Every callback attempt and its answer, oldest first, with the counters."""
        return json_response(
            {"stats": self.callbacks.stats.as_json(), "deliveries": list(self.callbacks.deliveries)}
        )

    async def get_callback_settings(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.callbacks.knobs.as_json())

    async def post_callback_settings(self, request: web.Request) -> web.StreamResponse:
        try:
            knobs = self.callbacks.knobs.merged(await self._json_body(request))
        except _BodyRefused as refused:
            return refused.answer
        except SettingsError as exc:
            return errors_response(400, exc.problems)
        self.callbacks.knobs = knobs
        return json_response(knobs.as_json())

    async def get_health(self, request: web.Request) -> web.StreamResponse:
        """For readiness probes and scripts waiting on the simulator."""
        return json_response({"status": "ok"})

    async def on_shutdown(self, app: web.Application) -> None:
        """Release requests held by the timeout fault so shutdown is prompt."""
        self._stopping.set()
        await self.callbacks.close()


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the socket without a status line, as a crashed proxy would.

    The returned response is never written: aiohttp treats the closed
    transport as a client that went away and discards it quietly.
    """
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=499)


async def _not_found(request: web.Request) -> web.StreamResponse:
    return errors_response(404, ["no such path"])


def _route(app: web.Application, path: str, handlers: Mapping[str, Handler]) -> None:
    """Register ``handlers`` and a catch-all that answers 405 in the envelope."""
    resource = app.router.add_resource(path)
    for method, handler in handlers.items():
        resource.add_route(method, handler)
    allowed = ", ".join(sorted(handlers))

    async def method_not_allowed(request: web.Request) -> web.StreamResponse:
        return errors_response(
            405, [f"method {request.method} is not allowed here"], {hdrs.ALLOW: allowed}
        )

    resource.add_route(hdrs.METH_ANY, method_not_allowed)


SIMULATOR: Final = web.AppKey("simulator", Simulator)


def build_app(simulator: Simulator) -> web.Application:
    """The aiohttp application serving ``simulator``; the body cap is enforced here too."""
    app = web.Application(client_max_size=simulator.config.max_body_bytes)
    app[SIMULATOR] = simulator
    _route(app, EVENTS_PATH_TEMPLATE, {hdrs.METH_POST: simulator.post_event})
    _route(app, "/_sim/events", {hdrs.METH_GET: simulator.get_events})
    _route(app, "/_sim/stats", {hdrs.METH_GET: simulator.get_stats})
    _route(
        app,
        "/_sim/faults",
        {hdrs.METH_GET: simulator.get_faults, hdrs.METH_POST: simulator.post_faults},
    )
    _route(
        app,
        "/_sim/failing",
        {
            hdrs.METH_GET: simulator.get_failing,
            hdrs.METH_POST: simulator.post_failing,
            hdrs.METH_DELETE: simulator.delete_failing,
        },
    )
    _route(app, "/_sim/reset", {hdrs.METH_POST: simulator.post_reset})
    _route(
        app,
        "/_sim/companies/{company_key}/outage",
        {hdrs.METH_GET: simulator.get_outage, hdrs.METH_POST: simulator.post_outage},
    )
    _route(app, "/_sim/health", {hdrs.METH_GET: simulator.get_health})
    _route(
        app,
        CALLBACKS_PATH_TEMPLATE,
        {hdrs.METH_GET: simulator.list_callbacks, hdrs.METH_POST: simulator.create_callback},
    )
    _route(
        app,
        CALLBACKS_PATH_TEMPLATE + "/{callback_id}",
        {hdrs.METH_GET: simulator.get_callback, hdrs.METH_DELETE: simulator.delete_callback},
    )
    _route(app, "/_sim/callbacks", {hdrs.METH_GET: simulator.get_sent_callbacks})
    _route(
        app,
        "/_sim/callbacks/settings",
        {
            hdrs.METH_GET: simulator.get_callback_settings,
            hdrs.METH_POST: simulator.post_callback_settings,
        },
    )
    app.router.add_route(hdrs.METH_ANY, "/{path:.*}", _not_found)
    app.on_shutdown.append(simulator.on_shutdown)
    return app
