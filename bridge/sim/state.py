"""What the simulator remembers: counters, accepted events and seen event ids.

Everything is bounded so a soak run cannot exhaust memory: the event log keeps
the newest ``max_events`` entries and the duplicate memory the newest
``max_event_ids`` ids. Accepted bodies are kept as the raw bytes that were
parsed, not as parsed objects: bytes are a fraction of the size and the cyclic
garbage collector never has to walk them, which keeps the hot path fast on a
long run. They are parsed again only when ``GET /_sim/events`` asks.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import orjson

SENT: Final = "sent"
DUPLICATE: Final = "duplicate"


@dataclass(slots=True)
class Stats:
    """Request counters; every events request lands in ``received`` and exactly one other.

    ``received == sent + duplicates + rejected + rate_limited + unauthorized + faults
    + malformed + internal_errors`` holds at any moment between requests.
    ``faults_*`` split ``faults`` by kind (``faults_targeted``: 503s for an
    ``event_id`` matching the ``/_sim/failing`` pattern). ``malformed`` also counts requests too
    broken to have a path: they might have been events requests.
    """

    received: int = 0
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    rate_limited: int = 0
    unauthorized: int = 0
    faults: int = 0
    faults_500: int = 0
    faults_503: int = 0
    faults_timeout: int = 0
    faults_drop: int = 0
    faults_targeted: int = 0
    malformed: int = 0
    internal_errors: int = 0

    def as_json(self) -> dict[str, int]:
        """The counters as the JSON object ``GET /_sim/stats`` answers."""
        return dataclasses.asdict(self)


class RecordedEvent(NamedTuple):
    """One accepted request, kept compact until someone inspects it."""

    received_at: float
    company_key: str
    outcome: str
    event_id: str
    raw_body: bytes
    traceparent: str | None = None
    """The request's W3C ``traceparent`` header, as sent (a bridge with tracing on sends one)."""

    def as_json(self) -> dict[str, Any]:
        """The ``GET /_sim/events`` entry: the body is re-parsed from the kept bytes."""
        stamp = datetime.fromtimestamp(self.received_at, UTC)
        entry = {
            "company_key": self.company_key,
            "outcome": self.outcome,
            "event_id": self.event_id,
            "body": orjson.loads(self.raw_body),
            "received_at": stamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
        if self.traceparent is not None:
            entry["traceparent"] = self.traceparent
        return entry


class EventLog:
    """Accepted events in arrival order plus the per-company duplicate memory."""

    __slots__ = ("_events", "_id_order", "_seen_ids")

    def __init__(self, max_events: int, max_event_ids: int) -> None:
        self._events: deque[RecordedEvent] = deque(maxlen=max_events)
        self._seen_ids: set[tuple[str, str]] = set()
        self._id_order: deque[tuple[str, str]] = deque(maxlen=max_event_ids)

    def first_sighting(self, company_key: str, event_id: str) -> bool:
        """Remember the id; True unless this company already used it.

        When the memory is full the oldest id is forgotten, so a re-use older
        than ``max_event_ids`` ids counts as new: documented, and the price of
        a bounded memory.
        """
        key = (company_key, event_id)
        if key in self._seen_ids:
            return False
        order = self._id_order
        if order.maxlen is not None and len(order) == order.maxlen:
            if order.maxlen == 0:
                return True
            self._seen_ids.discard(order[0])
        order.append(key)
        self._seen_ids.add(key)
        return True

    def record(self, event: RecordedEvent) -> None:
        """Keep an accepted event, dropping the oldest when the log is full."""
        self._events.append(event)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every kept event, oldest first, as JSON-ready objects."""
        return [event.as_json() for event in self._events]

    def __len__(self) -> int:
        return len(self._events)

    def clear(self) -> None:
        """Forget every event and every seen id (``POST /_sim/reset``)."""
        self._events.clear()
        self._seen_ids.clear()
        self._id_order.clear()
