"""The simulated Callback API and the event-processed callbacks it sends.

Registrations follow the rules Vibes documents (``bridge.vibes.callbacks``): one
per callback type (and per-type filter) per company with overlapping dates,
at most 50 destination URLs in all, DELETE ends a registration now. For each
event the Event API accepted (not duplicates), every matching active
registration gets the callbacks Vibes would send, after ``delay_s``: a routing
callback, then (when routing succeeded) a processing one; configurable shares of
events fail routing or processing with one of the documented reasons. A non-2xx
answer, a timeout or a refused connection is retried every ``retry_s`` up to
``max_attempts`` tries in all (Vibes: every five minutes, five times). Every
attempt and its answer is kept (bounded) for ``GET /_sim/callbacks``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp

from bridge.sim.faults import SettingsError
from bridge.vibes.callbacks import (
    CALLBACK_TYPE,
    PROCESSING_FAILURES,
    ROUTING_ACCEPTED,
    ROUTING_FAILURES,
    SMS_QUEUED,
    callbacks_path,
    conflicts,
    filtered_event_type,
    parse_date,
)

log = logging.getLogger(__name__)

MAX_DESTINATIONS: Final = 50
MAX_URL_LENGTH: Final = 1024
_METHODS: Final = ("POST", "PUT")
_CONTENT_TYPES: Final = ("application/json", "text/json")
_ANSWER_TIMEOUT_S: Final = 2.0  # how long Vibes waits for a receiver
_MAX_DELIVERIES: Final = 100_000


class RegistrationError(ValueError):
    """A registration the Callback API refuses; ``status`` is the answer's code."""

    def __init__(self, status: int, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.status = status
        self.problems = problems


@dataclass(frozen=True, slots=True)
class CallbackKnobs:
    """Run-time callback behaviour; the field names are ``/_sim/callbacks/settings`` keys."""

    delay_s: float = 0.0
    retry_s: float = 300.0
    max_attempts: int = 5
    routing_failure_rate: float = 0.0
    processing_failure_rate: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.delay_s <= 3600:
            problems.append("delay_s must be between 0 and 3600")
        if not 0 <= self.retry_s <= 3600:
            problems.append("retry_s must be between 0 and 3600")
        if not 1 <= self.max_attempts <= 100:
            problems.append("max_attempts must be between 1 and 100")
        shares = (self.routing_failure_rate, self.processing_failure_rate)
        if any(not 0 <= share <= 1 for share in shares) or sum(shares) > 1 + 1e-9:
            problems.append("the failure rates must be between 0 and 1 and sum to at most 1")
        if problems:
            raise SettingsError(problems)

    def merged(self, patch: Any) -> CallbackKnobs:
        """These knobs with ``patch`` applied; unknown keys and non-numbers refused."""
        if not isinstance(patch, Mapping):
            raise SettingsError(["the settings must be a JSON object"])
        names = {field.name for field in dataclasses.fields(self)}
        problems = [
            f"unknown setting: {key}" for key in sorted(map(str, patch)) if key not in names
        ]
        for key, value in patch.items():
            if key in names and (isinstance(value, bool) or not isinstance(value, int | float)):
                problems.append(f"{key} must be a number")
        if problems:
            raise SettingsError(problems)
        changes = {key: value for key, value in patch.items() if key in names}
        if "max_attempts" in changes:
            changes["max_attempts"] = int(changes["max_attempts"])
        return dataclasses.replace(self, **changes)

    def as_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class CallbackStats:
    """``attempts == acknowledged + failed_attempts``; ``abandoned`` callbacks ran out of tries."""

    callbacks: int = 0
    attempts: int = 0
    acknowledged: int = 0
    failed_attempts: int = 0
    abandoned: int = 0

    def as_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Registrations:
    """The Callback API's registrations, per company key."""

    def __init__(self) -> None:
        self._entities: dict[str, dict[str, Any]] = {}

    def create(self, company_key: str, body: Any, now: datetime) -> dict[str, Any]:
        """A new registration, or :class:`RegistrationError` with Vibes' reasons."""
        entity = _entity(company_key, body, now)
        existing = self.listed(company_key, now)
        if conflicts(entity, existing, now=now):
            raise RegistrationError(
                409,
                [
                    "a callback of this callback_type (and event type filter) already exists "
                    "for this company with overlapping dates"
                ],
            )
        if len(existing) >= MAX_DESTINATIONS:
            raise RegistrationError(400, [f"at most {MAX_DESTINATIONS} destination URLs in all"])
        self._entities[entity["callback_id"]] = entity
        return entity

    @property
    def any(self) -> bool:
        """Whether anything was ever registered (the Event API's hot path asks)."""
        return bool(self._entities)

    def listed(self, company_key: str, now: datetime) -> list[dict[str, Any]]:
        """Active and future registrations, oldest first."""
        return [
            entity
            for entity in self._entities.values()
            if entity["_company_key"] == company_key and not _ended(entity, now)
        ]

    def get(self, company_key: str, callback_id: str) -> dict[str, Any] | None:
        entity = self._entities.get(callback_id)
        return entity if entity is not None and entity["_company_key"] == company_key else None

    def end(self, company_key: str, callback_id: str, now: datetime) -> dict[str, Any] | None:
        """DELETE: the end date becomes now."""
        entity = self.get(company_key, callback_id)
        if entity is not None:
            entity["end_date"] = entity["updated_at"] = _iso(now)
        return entity

    def receiving(self, company_key: str, event_type: str, now: datetime) -> list[dict[str, Any]]:
        """Active event_processed registrations whose filter takes ``event_type``."""
        found = []
        for entity in self.listed(company_key, now):
            start = parse_date(entity.get("start_date"))
            wanted = filtered_event_type(entity)
            if start is not None and start > now:
                continue
            if wanted is None or wanted.lower() == event_type.lower():
                found.append(entity)
        return found


def public(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The entity as the API shows it (without the simulator's own bookkeeping)."""
    return {key: value for key, value in entity.items() if not key.startswith("_")}


class CallbackSender:
    """Sends the callbacks for accepted events, with Vibes' retries, and remembers each try."""

    def __init__(self, knobs: CallbackKnobs, rng: random.Random) -> None:
        self.knobs = knobs
        self.stats = CallbackStats()
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=_MAX_DELIVERIES)
        self._rng = rng
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def event_accepted(self, registrations: list[dict[str, Any]], event: Mapping[str, Any]) -> None:
        """Plan this event's callbacks to every registration (no I/O before the delay)."""
        if not registrations:
            return
        bodies = self._bodies(event)
        for entity in registrations:
            task = asyncio.get_running_loop().create_task(self._send_all(entity, bodies))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def reset(self) -> None:
        self.stats = CallbackStats()
        self.deliveries.clear()

    async def close(self) -> None:
        """Cancel pending callbacks and close the connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def _bodies(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The routing callback, then the processing one when routing succeeded."""
        draw = self._rng.random()
        knobs = self.knobs
        if draw < knobs.routing_failure_rate:
            return [_callback(event, "routing", "failed", self._rng.choice(ROUTING_FAILURES))]
        routed = _callback(event, "routing", "processing", ROUTING_ACCEPTED)
        if draw < knobs.routing_failure_rate + knobs.processing_failure_rate:
            reason = self._rng.choice(PROCESSING_FAILURES)
            return [routed, _callback(event, "processing", "failed", reason)]
        return [routed, _callback(event, "processing", "processing", SMS_QUEUED)]

    async def _send_all(self, entity: Mapping[str, Any], bodies: list[dict[str, Any]]) -> None:
        await asyncio.sleep(self.knobs.delay_s)
        for body in bodies:
            await self._send(entity, body)

    async def _send(self, entity: Mapping[str, Any], body: dict[str, Any]) -> None:
        destination = entity["destination"]
        self.stats.callbacks += 1
        for attempt in range(1, self.knobs.max_attempts + 1):
            status, error = await self._post(destination, body)
            self.stats.attempts += 1
            self._remember(entity, body, attempt, status, error)
            if status is not None and 200 <= status < 300:
                self.stats.acknowledged += 1
                return
            self.stats.failed_attempts += 1
            if attempt < self.knobs.max_attempts:
                await asyncio.sleep(self.knobs.retry_s)
        self.stats.abandoned += 1  # Vibes moves it to an error queue

    async def _post(
        self, destination: Mapping[str, Any], body: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_ANSWER_TIMEOUT_S)
            )
        try:
            async with self._session.request(
                destination.get("method", "POST"),
                destination["url"],
                json=body,
                headers={"Content-Type": destination.get("content_type", "application/json")},
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, type(exc).__name__

    def _remember(
        self,
        entity: Mapping[str, Any],
        body: Mapping[str, Any],
        attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        processed = body[CALLBACK_TYPE]
        self.deliveries.append(
            {
                "callback_id": body["event_id"],
                "registration_id": entity["callback_id"],
                "event_id": processed["event_id"],
                "event_type": processed["event_type"],
                "action_type": processed["action"]["type"],
                "status": processed["action"]["status"],
                "status_reason": processed["action"]["status_reason"],
                "attempt": attempt,
                "answer": status,
                "error": error,
                "at": _iso(datetime.now(UTC)),
            }
        )


def _callback(
    event: Mapping[str, Any], action_type: str, status: str, reason: str
) -> dict[str, Any]:
    action: dict[str, Any] = {"type": action_type, "status": status, "status_reason": reason}
    if status != "failed":
        action["resource_url"] = f"/event_triggered_messages/{uuid.uuid4()}"
    return {
        "event_id": str(uuid.uuid4()),
        "callback_type": CALLBACK_TYPE,
        "event_date": _iso(datetime.now(UTC)),
        CALLBACK_TYPE: {
            "event_id": event["event_id"],
            "event_type": event["event_type"],
            "event_data": event.get("event_data", {}),
            "debug_data": event.get("debug_data", {}),
            "action": action,
        },
    }


def _entity(company_key: str, body: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(body, Mapping):
        raise RegistrationError(400, ["the body must be a JSON object"])
    problems: list[str] = []
    if body.get("callback_type", body.get("event_type")) != CALLBACK_TYPE:
        problems.append("callback_type must be event_processed (the only type simulated)")
    destination = _destination(body.get("destination"), problems)
    _check_dates(body, problems)
    filter_ = body.get(CALLBACK_TYPE)
    if filter_ is not None and not isinstance(filter_, Mapping):
        problems.append("event_processed must be an object")
    if problems:
        raise RegistrationError(400, problems)
    callback_id = str(uuid.uuid4())
    entity: dict[str, Any] = {
        "callback_id": callback_id,
        "callback_type": CALLBACK_TYPE,
        "destination": destination,
        "start_date": body.get("start_date") or _iso(now),
        "end_date": body.get("end_date"),
        "url": callbacks_path(company_key, callback_id),
        "created_at": _iso(now),
        "updated_at": _iso(now),
        "_company_key": company_key,
    }
    if filter_:
        entity[CALLBACK_TYPE] = dict(filter_)
    return entity


def _destination(destination: Any, problems: list[str]) -> dict[str, Any]:
    if not isinstance(destination, Mapping):
        problems.append("destination is required and must be an object")
        return {}
    url = destination.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        problems.append("destination.url must be an http(s) URL")
    elif len(url) > MAX_URL_LENGTH:
        problems.append(f"destination.url must be at most {MAX_URL_LENGTH} characters")
    method = destination.get("method", "POST")
    if method not in _METHODS:
        problems.append("destination.method must be POST or PUT")
    content_type = destination.get("content_type", "application/json")
    if content_type not in _CONTENT_TYPES:
        problems.append("destination.content_type must be application/json or text/json")
    return {"url": url, "method": method, "content_type": content_type}


def _check_dates(body: Mapping[str, Any], problems: list[str]) -> None:
    dates = {}
    for name in ("start_date", "end_date"):
        if body.get(name) is not None:
            dates[name] = parse_date(body[name])
            if dates[name] is None:
                problems.append(f"{name} must be an ISO 8601 date")
    start, end = dates.get("start_date"), dates.get("end_date")
    if start is not None and end is not None and end <= start:
        problems.append("end_date must be after start_date")


def _ended(entity: Mapping[str, Any], now: datetime) -> bool:
    end = parse_date(entity.get("end_date"))
    return end is not None and end <= now


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
