"""Vibes' event-processed callbacks and the Callback API: the wire facts, pure.

Shared by the receiver in ``vibes-bridge run``, the ``vibes-bridge callbacks``
command and the simulator (``../reference/vibes-event-api.md`` in the shared docs).
No I/O library is imported here.

Metric labels come from :func:`bounded_labels`: the callback's strings are an open
set written by whoever reaches the receiver, so each label is held to a known set
(or ``other``) to keep the series count bounded whatever arrives; for the event
type that set is the configured rules' declared types.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import orjson

from bridge.errors import BridgeError
from bridge.vibes.entity import MAX_EVENT_ID_LENGTH, is_valid_event_type

CALLBACK_TYPE: Final = "event_processed"
ACTION_TYPES: Final = frozenset({"routing", "processing"})
# Statuses Vibes shows in its examples and documentation of the action object.
KNOWN_STATUSES: Final = frozenset({"processing", "failed", "success", "completed"})

# Reasons Vibes documents, in the snake_case form its one published example uses
# (``accepted_by_event_triggered_message``). Vibes does not publish every failure
# string: anything else is counted as ``other`` and kept verbatim on the topic.
ROUTING_ACCEPTED: Final = "accepted_by_event_triggered_message"
NO_ROUTE: Final = "no_route_rules_for_event_type"
NOT_SUBSCRIBED: Final = "person_not_subscribed"
PERSON_NOT_FOUND: Final = "person_not_found"
CARRIER_NOT_SUPPORTED: Final = "carrier_not_supported"
NO_INCENTIVE_CODES: Final = "no_incentive_codes_available"
UNEXPECTED_ERROR: Final = "unexpected_error"
SMS_QUEUED: Final = "sms_queued_to_carrier"
ROUTING_FAILURES: Final = (NO_ROUTE, NOT_SUBSCRIBED, PERSON_NOT_FOUND, CARRIER_NOT_SUPPORTED)
PROCESSING_FAILURES: Final = (NO_INCENTIVE_CODES, UNEXPECTED_ERROR)
KNOWN_REASONS: Final = frozenset(
    {ROUTING_ACCEPTED, SMS_QUEUED, *ROUTING_FAILURES, *PROCESSING_FAILURES}
)
OTHER: Final = "other"
NONE: Final = "none"

# Vibes' published source addresses for callbacks (each a /32).
VIBES_US_RANGES: Final = (
    "35.155.139.143/32",
    "52.32.61.199/32",
    "35.161.244.84/32",
    "18.205.120.48/32",
    "52.22.43.57/32",
    "18.232.9.131/32",
)
VIBES_EU_RANGES: Final = (
    "34.243.232.57/32",
    "52.48.241.82/32",
    "34.249.188.130/32",
    "54.247.36.51/32",
    "34.253.250.65/32",
    "54.217.181.160/32",
)
VIBES_RANGES: Final = VIBES_US_RANGES + VIBES_EU_RANGES

CALLBACKS_PATH_TEMPLATE: Final = "/companies/{company_key}/config/callbacks"
MAX_DESTINATION_URL: Final = 1024
_REASON_SEPARATORS: Final = re.compile(r"[\s\-.]+")


class InvalidCallback(BridgeError):
    """A body that is not an event-processed callback; the message holds no values."""


@dataclass(frozen=True, slots=True)
class ProcessedCallback:
    """What the receiver needs from a valid callback; the body itself travels as received."""

    callback_id: str | None
    event_id: str
    event_type: str
    action_type: str
    status: str
    status_reason: str | None
    debug_data: Mapping[str, Any] | None


def parse_callback(body: bytes) -> ProcessedCallback:
    """The callback in ``body``, or :class:`InvalidCallback` saying what is wrong."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidCallback("the body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidCallback("the body is not a JSON object")
    if document.get("callback_type") != CALLBACK_TYPE:
        raise InvalidCallback("callback_type is not event_processed")
    processed = document.get(CALLBACK_TYPE)
    if not isinstance(processed, dict):
        raise InvalidCallback("event_processed is missing or not an object")
    event_id = processed.get("event_id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise InvalidCallback("event_processed.event_id is missing or not a valid event id")
    event_type = processed.get("event_type")
    if not isinstance(event_type, str) or not is_valid_event_type(event_type):
        raise InvalidCallback("event_processed.event_type is missing or not a valid event type")
    action = processed.get("action")
    if not isinstance(action, dict):
        raise InvalidCallback("event_processed.action is missing or not an object")
    action_type, status = action.get("type"), action.get("status")
    if not isinstance(action_type, str) or not isinstance(status, str):
        raise InvalidCallback("event_processed.action needs type and status strings")
    reason = action.get("status_reason")
    debug_data = processed.get("debug_data")
    callback_id = document.get("event_id")
    return ProcessedCallback(
        callback_id=callback_id if isinstance(callback_id, str) else None,
        event_id=event_id,
        event_type=event_type,
        action_type=action_type,
        status=status,
        status_reason=reason if isinstance(reason, str) else None,
        debug_data=debug_data if isinstance(debug_data, dict) else None,
    )


def normalised_reason(reason: str | None) -> str:
    """``"Person not subscribed"`` and ``person-not-subscribed`` as ``person_not_subscribed``."""
    if reason is None or not reason.strip():
        return NONE
    return _REASON_SEPARATORS.sub("_", reason.strip().lower())


def bounded_labels(
    callback: ProcessedCallback, event_types: frozenset[str]
) -> tuple[str, str, str, str]:
    """``(event_type, action_type, status, status_reason)`` from bounded sets.

    ``event_types`` are the configured rules' declared types, lowercased (see
    :func:`label_event_types`): anyone who reaches the receiver can write any
    valid type, so one outside that set is ``other``. Event types are Vibes'
    case-insensitive identifiers, so they are compared lowercased.
    """
    event_type = callback.event_type.lower()
    action_type = callback.action_type.lower()
    status = callback.status.lower()
    reason = normalised_reason(callback.status_reason)
    return (
        event_type if event_type in event_types else OTHER,
        action_type if action_type in ACTION_TYPES else OTHER,
        status if status in KNOWN_STATUSES else OTHER,
        reason if reason in KNOWN_REASONS or reason == NONE else OTHER,
    )


def label_event_types(declared: Iterable[str]) -> frozenset[str]:
    """The set :func:`bounded_labels` accepts: the rules' declared types, lowercased."""
    return frozenset(event_type.lower() for event_type in declared)


def record_timestamp_ms(callback: ProcessedCallback) -> int | None:
    """The source record's time, when the event's ``debug_data`` carried it.

    The default ``debug_data`` carries it (milliseconds since the epoch) for a
    record with a timestamp; a rule with its own ``debug_data`` keeps it by mapping
    ``timestamp: _kafka.timestamp``, and without that the latency is not known.
    """
    value = None if callback.debug_data is None else callback.debug_data.get("timestamp")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def source_coordinates(callback: ProcessedCallback) -> dict[str, str]:
    """``rule``, ``topic``, ``partition``, ``offset`` of the default ``debug_data``, when there.

    Only these names and only scalar values: anything else in ``debug_data`` is
    the user's own and may hold person data.
    """
    found: dict[str, str] = {}
    debug = callback.debug_data or {}
    for name in ("rule", "topic", "partition", "offset", "timestamp"):
        value = debug.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool):
            found[name] = str(value)[:256]
    return found


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_allowed_address(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether ``address`` (text, maybe IPv4-mapped IPv6) is inside one of ``networks``."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


# --------------------------------------------------------------------- Callback API


def callbacks_path(company_key: str, callback_id: str | None = None) -> str:
    """``/companies/{key}/config/callbacks[/{id}]`` with both parts escaped."""
    path = CALLBACKS_PATH_TEMPLATE.format(company_key=quote(company_key, safe=""))
    return path if callback_id is None else f"{path}/{quote(callback_id, safe='')}"


def registration_body(
    url: str,
    *,
    event_type: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> dict[str, Any]:
    """The entity that registers ``url`` for event-processed callbacks."""
    if len(url) > MAX_DESTINATION_URL:
        raise ValueError(f"the destination URL is longer than {MAX_DESTINATION_URL} characters")
    body: dict[str, Any] = {
        "callback_type": CALLBACK_TYPE,
        "destination": {"url": url, "method": "POST", "content_type": "application/json"},
    }
    if event_type is not None:
        if not is_valid_event_type(event_type):
            raise ValueError("the event type may hold only letters, digits, '-' and '_'")
        body[CALLBACK_TYPE] = {"event_type": event_type}
    if start_date is not None:
        body["start_date"] = start_date
    if end_date is not None:
        body["end_date"] = end_date
    return body


def parse_date(text: Any) -> datetime | None:
    """An ISO 8601 date of the Callback API (``2017-04-05T14:30Z``), or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def filtered_event_type(entity: Mapping[str, Any]) -> str | None:
    """The registration's per-type filter; None when it covers every event type."""
    filter_ = entity.get(CALLBACK_TYPE)
    value = filter_.get("event_type") if isinstance(filter_, Mapping) else None
    return value if isinstance(value, str) else None


def registration_type(entity: Mapping[str, Any]) -> str | None:
    """``callback_type``, or the deprecated ``event_type`` field that used to name it."""
    value = entity.get("callback_type", entity.get("event_type"))
    return value if isinstance(value, str) else None


def overlaps(first: Mapping[str, Any], second: Mapping[str, Any], *, now: datetime) -> bool:
    """Whether two registrations' active periods overlap (a missing start is now,
    a missing end is never)."""
    start_a = parse_date(first.get("start_date")) or now
    start_b = parse_date(second.get("start_date")) or now
    end_a, end_b = parse_date(first.get("end_date")), parse_date(second.get("end_date"))
    starts_before_b_ends = end_b is None or start_a < end_b
    starts_before_a_ends = end_a is None or start_b < end_a
    return starts_before_b_ends and starts_before_a_ends


def conflicts(
    wanted: Mapping[str, Any], existing: Sequence[Mapping[str, Any]], *, now: datetime
) -> list[Mapping[str, Any]]:
    """Existing registrations the documented rule forbids next to ``wanted``:
    one per callback type (and per-type filter) per company with overlapping dates."""
    kind, event_type = registration_type(wanted), filtered_event_type(wanted)
    return [
        entity
        for entity in existing
        if registration_type(entity) == kind
        and filtered_event_type(entity) == event_type
        and overlaps(wanted, entity, now=now)
    ]
