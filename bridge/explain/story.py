"""One event's story from the receipts, dead-letter and callbacks topics (pure).

``vibes-bridge explain`` reads those topics (and, asked by source topic and key,
the source topic) over a time window and hands every record to a
:class:`Collector`, which keeps the ones about the event asked for. The order
matters and is the command's: source records first (their coordinates), then
receipts and dead letters (their event ids), then callbacks, which are found by
event id or by the coordinates in their ``debug_data``. :func:`build_story` turns
what was kept into the story in order: the source record, the rule that mapped it
into which event, Vibes' acceptance or the dead letter, and every callback.

Person data stays out unless asked for (``show_person_data``): the callback's
``event_data`` (recipients, names), Vibes' error answer (it may echo the body),
and an event id a rule built from the record (the bridge's own ids, hashes of
coordinates, and the id the operator asked about are shown).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from bridge.dead_letters import (
    ATTEMPTS_HEADER,
    HTTP_STATUS_HEADER,
    MESSAGE_HEADER,
    RESPONSE_HEADER,
    DeadLetter,
    NotADeadLetter,
    SourceCoordinates,
    read_dead_letter,
)
from bridge.errors import BridgeError
from bridge.mapping.event_id import coordinates_event_id
from bridge.receipts import NotAReceipt, Receipt, read_receipt
from bridge.records import SourceRecord
from bridge.vibes.callbacks import (
    InvalidCallback,
    ProcessedCallback,
    normalised_reason,
    parse_callback,
    source_coordinates,
)

Coordinates = tuple[str, int, int]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
HIDDEN: Final = "(hidden: --show-person-data shows it)"
_ROLES: Final = {"source": "source records", "dead_letters": "dead letters"}

# What a callback's reason means for the customer (docs/callbacks.md, "Outcomes").
MEANINGS: Final = {
    "accepted_by_event_triggered_message": "routed to an event-triggered message",
    "sms_queued_to_carrier": "queued to carrier",
    "no_route_rules_for_event_type": "no route: no message is set up for this event type",
    "person_not_subscribed": "not subscribed: the person is not on the message's list",
    "person_not_found": "person not found in Vibes",
    "carrier_not_supported": "carrier not supported (a landline?)",
    "no_incentive_codes_available": "no incentive codes left in the pool",
    "unexpected_error": "Vibes failed (unexpected error)",
}


@dataclass(frozen=True, slots=True)
class Query:
    """What the operator asked about: an event id, or a source topic and record key."""

    since_ms: int
    until_ms: int
    event_id: str | None = None
    topic: str | None = None
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class SeenCallback:
    callback: ProcessedCallback
    written_ms: int | None
    value: bytes


@dataclass(frozen=True, slots=True)
class SeenLetter:
    letter: DeadLetter
    written_ms: int | None


@dataclass(slots=True)
class Collector:
    """Keeps the records that belong to the story; counts every record read, per topic."""

    query: Query
    sources: dict[Coordinates, int | None] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    letters: list[SeenLetter] = field(default_factory=list)
    callbacks: list[SeenCallback] = field(default_factory=list)
    read: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)

    def _count(self, record: SourceRecord) -> None:
        self.read[record.topic] = self.read.get(record.topic, 0) + 1

    def _unreadable(self, record: SourceRecord) -> None:
        self.unreadable[record.topic] = self.unreadable.get(record.topic, 0) + 1

    @property
    def event_ids(self) -> set[str]:
        ids = {receipt.event_id for receipt in self.receipts}
        ids.update(seen.letter.event_id for seen in self.letters if seen.letter.event_id)
        if self.query.event_id is not None:
            ids.add(self.query.event_id)
        return ids

    def _wanted(self, coordinates: Coordinates | None, event_id: str | None) -> bool:
        if self.query.event_id is not None:
            return event_id == self.query.event_id
        return coordinates is not None and coordinates in self.sources

    def take_source(self, record: SourceRecord) -> None:
        """A record of the source topic: kept when its key is the one asked for."""
        self._count(record)
        if record.key == self.query.key and record.topic == self.query.topic:
            coordinates = (record.topic, record.partition, record.offset)
            self.sources[coordinates] = record.timestamp_ms

    def take_receipt(self, record: SourceRecord) -> None:
        self._count(record)
        try:
            receipt = read_receipt(record.value)
        except NotAReceipt:
            self._unreadable(record)
            return
        source = receipt.source
        if self._wanted((source.topic, source.partition, source.offset), receipt.event_id):
            self.receipts.append(receipt)

    def take_letter(self, record: SourceRecord) -> None:
        self._count(record)
        try:
            letter = read_dead_letter(record.key, record.value, record.headers)
        except NotADeadLetter:
            self._unreadable(record)
            return
        source = letter.source
        if source is None:  # an invalid callback: about no event
            return
        if self._wanted((source.topic, source.partition, source.offset), letter.event_id):
            self.letters.append(SeenLetter(letter, record.timestamp_ms))

    def take_callback(self, record: SourceRecord) -> None:
        self._count(record)
        try:
            callback = parse_callback(record.value or b"")
        except InvalidCallback:
            self._unreadable(record)
            return
        wanted = callback.event_id in self.event_ids
        if not wanted and self.query.event_id is None:
            wanted = _callback_coordinates(callback) in self.sources
        if wanted:
            self.callbacks.append(SeenCallback(callback, record.timestamp_ms, record.value or b""))


def _callback_coordinates(callback: ProcessedCallback) -> Coordinates | None:
    found = source_coordinates(callback)
    try:
        return (found["topic"], int(found["partition"]), int(found["offset"]))
    except (KeyError, ValueError):
        return None


@dataclass(slots=True)
class _Event:
    """One event (or one record that never became an event) and what happened to it."""

    event_id: str | None
    rule: str | None
    source: SourceCoordinates | None
    steps: list[dict[str, Any]] = field(default_factory=list)


def build_story(
    collected: Collector,
    *,
    topics: dict[str, str],
    complete: bool,
    show_person_data: bool,
) -> dict[str, Any]:
    """The story as a JSON-ready document; ``topics`` names the topic read for each role
    (``receipts``, ``dead_letters``, ``callbacks``, ``source``), ``complete`` says whether
    every topic was read to the window's end."""
    query = collected.query
    events: dict[str | None, _Event] = {}
    record_failures: list[_Event] = []

    def event(event_id: str, rule: str | None, source: SourceCoordinates | None) -> _Event:
        if event_id not in events:
            events[event_id] = _Event(event_id, rule, source)
        return events[event_id]

    for receipt in collected.receipts:
        found = event(receipt.event_id, receipt.rule, receipt.source)
        if not any(step["step"] == "mapped" for step in found.steps):
            found.steps.append(
                {
                    "step": "mapped",
                    "at": None,
                    "rule": receipt.rule,
                    "event_type": receipt.event_type,
                }
            )
        found.steps.append(
            {
                "step": "accepted",
                "at": _iso(receipt.accepted_ms),
                "status": receipt.status,
                "attempts": receipt.attempts,
                "first_attempt_at": _iso(receipt.first_attempt_ms),
            }
        )
    for seen in collected.letters:
        letter = seen.letter
        assert letter.source is not None
        step = _letter_step(letter, seen.written_ms, show_person_data)
        if letter.event_id is None:
            failure = _Event(None, letter.rule, letter.source)
            failure.steps.append(step)
            record_failures.append(failure)
            continue
        found = event(letter.event_id, letter.rule, letter.source)
        if not any(step["step"] == "mapped" for step in found.steps):
            found.steps.append({"step": "mapped", "at": None, "rule": letter.rule})
        found.steps.append(step)
    for heard in sorted(collected.callbacks, key=lambda heard: heard.written_ms or 0):
        found = event(heard.callback.event_id, None, None)
        found.steps.append(_callback_step(heard, show_person_data))
    shown = [*events.values(), *record_failures]
    for item in shown:
        if item.source is not None:
            item.steps.insert(0, _record_step(item.source))
    for coordinates, timestamp in sorted(collected.sources.items()):
        if not any(item.source and tuple(item.source[:3]) == coordinates for item in shown):
            topic, partition, offset = coordinates
            silent = _Event(None, None, SourceCoordinates(topic, partition, offset, timestamp))
            silent.steps = [_record_step(silent.source), {"step": "no_outcome", "at": None}]
            shown.append(silent)
    return {
        "query": _query(query),
        "window": {"since": _iso(query.since_ms), "until": _iso(query.until_ms)},
        "found": bool(shown),
        "complete": complete,
        "read": {
            role: {
                "topic": topic,
                "records": collected.read.get(topic, 0),
                "unreadable": collected.unreadable.get(topic, 0),
            }
            for role, topic in topics.items()
        },
        "events": [
            {
                "event_id": _event_id(item, query, show_person_data),
                "rule": item.rule,
                "steps": item.steps,
            }
            for item in shown
        ],
    }


def _record_step(source: SourceCoordinates | None) -> dict[str, Any]:
    assert source is not None
    return {
        "step": "record",
        "at": _iso(source.timestamp_ms),
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
    }


def _query(query: Query) -> dict[str, Any]:
    if query.event_id is not None:
        return {"event_id": query.event_id}
    key = (query.key or b"").decode("utf-8", "replace")
    return {"topic": query.topic, "key": key}


def _event_id(item: _Event, query: Query, show_person_data: bool) -> str | None:
    """The id, unless a rule built it from the record and nobody asked for it by name."""
    if item.event_id is None or show_person_data or item.event_id == query.event_id:
        return item.event_id
    if item.rule is not None and item.source is not None:
        topic, partition, offset, _ = item.source
        if item.event_id == coordinates_event_id(item.rule, topic, partition, offset):
            return item.event_id
    return HIDDEN


def _letter_step(letter: DeadLetter, written_ms: int | None, show: bool) -> dict[str, Any]:
    headers = {name: (value or b"").decode("utf-8", "replace") for name, value in letter.headers}
    step: dict[str, Any] = {
        "step": "dead_lettered",
        "at": _iso(written_ms),
        "reason": str(letter.reason),
        "code": letter.code,
        "message": headers.get(MESSAGE_HEADER),
        "attempts": _int(headers.get(ATTEMPTS_HEADER)),
    }
    if HTTP_STATUS_HEADER in headers:
        step["status"] = _int(headers[HTTP_STATUS_HEADER])
    if RESPONSE_HEADER in headers:
        step["response"] = headers[RESPONSE_HEADER] if show else HIDDEN
    return step


def _callback_step(seen: SeenCallback, show: bool) -> dict[str, Any]:
    callback = seen.callback
    reason = normalised_reason(callback.status_reason)
    step: dict[str, Any] = {
        "step": "callback",
        "at": _iso(seen.written_ms),
        "action": callback.action_type,
        "status": callback.status,
        "status_reason": callback.status_reason,
        "meaning": MEANINGS.get(reason, "see the callback's status_reason"),
        "event_type": callback.event_type,
    }
    if show:
        step["event_data"] = _event_data(seen.value)
    return step


def _event_data(value: bytes) -> Any:
    try:
        document = orjson.loads(value)
        return document["event_processed"].get("event_data")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_text(story: dict[str, Any]) -> Iterable[str]:
    """The story as lines for a terminal."""
    query = story["query"]
    asked = (
        f"event {query['event_id']}"
        if "event_id" in query
        else f"key {query['key']!r} on {query['topic']}"
    )
    window = story["window"]
    if not story["found"]:
        yield f"{asked}: not seen between {window['since']} and {window['until']}"
    for item in story["events"]:
        title = (
            "record that made no event" if item["event_id"] is None else f"event {item['event_id']}"
        )
        yield f"{title}" + (f" (rule {item['rule']})" if item["rule"] else "")
        for step in item["steps"]:
            yield f"  {step['at'] or '-':<24} {_describe(step)}"
    read = ", ".join(
        f"{part['records']} {_ROLES.get(role, role)} ({part['topic']})"
        for role, part in story["read"].items()
    )
    end = "to the window's end" if story["complete"] else "NOT to the window's end (limit reached)"
    yield f"read {read} between {window['since']} and {window['until']}, {end}"


def _describe(step: dict[str, Any]) -> str:
    kind = step["step"]
    if kind == "record":
        return f"source record {step['topic']}[{step['partition']}]@{step['offset']}"
    if kind == "mapped":
        into = f" into {step['event_type']}" if step.get("event_type") else ""
        return f"mapped by rule {step['rule']}{into}"
    if kind == "accepted":
        return (
            f"accepted by Vibes (HTTP {step['status']}) after {step['attempts']} attempt(s), "
            f"first at {step['first_attempt_at'] or '-'}"
        )
    if kind == "dead_lettered":
        status = f", HTTP {step['status']}" if "status" in step else ""
        response = f", Vibes said: {step['response']}" if "response" in step else ""
        return (
            f"dead-lettered: {step['reason']} ({step['code']}{status}) after "
            f"{step['attempts']} attempt(s): {step['message']}{response}"
        )
    if kind == "callback":
        data = f"; event_data {step['event_data']}" if "event_data" in step else ""
        return (
            f"callback {step['action']} {step['status']} {step['status_reason'] or ''}: "
            f"{step['meaning']}{data}"
        )
    return (
        "no receipt, dead letter or callback in the window (no rule matched it, "
        "it is not consumed yet, or its outcome lies past the window)"
    )


class ExplainError(BridgeError):
    """A request explain cannot answer (the message says why)."""
