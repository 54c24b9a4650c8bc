"""The Vibes event entity's documented rules (../shared/reference/vibes-event-api.md).

The mapping engine enforces these before any HTTP call (a violation is a mapping
error, not a delivery error) and the simulator enforces them as Vibes does, so
both read them from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

RECIPIENT_FIELDS: Final = (
    "external_person_id",
    "mdn",
    "person_key",
    "person_id",
    "vibes_device_id",
)
MAX_EVENT_ID_LENGTH: Final = 40
# Vibes' event-triggered messaging guide: 16 KB is the largest event body it takes.
MAX_BODY_BYTES: Final = 16 * 1024
EVENT_TYPE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]+")


def is_valid_event_type(event_type: str) -> bool:
    """Letters, digits, ``-`` and ``_`` only, and not empty."""
    return EVENT_TYPE_PATTERN.fullmatch(event_type) is not None


def is_valid_recipient(value: Any) -> bool:
    """A recipient id is a non-empty string (the engine writes numbers as text, refuses ``""``)."""
    return isinstance(value, str) and value != ""


def recipient_problems(event_data: Mapping[str, Any]) -> list[str]:
    """What is wrong with the recipient fields of an ``event_data`` object.

    Every recipient field present must hold a valid id, and at least one must
    be present: a field that is there but empty names nobody, so it is refused
    rather than silently skipped (the mapping engine refuses it the same way).
    """
    present = [name for name in RECIPIENT_FIELDS if name in event_data]
    problems = [
        f"event_data.{name} must be a non-empty string"
        for name in present
        if not is_valid_recipient(event_data[name])
    ]
    if not present:
        problems.append("event_data must name a recipient: one of " + ", ".join(RECIPIENT_FIELDS))
    return problems


def entity_problems(body: Any) -> list[str]:
    """Every rule the body breaks, as short messages free of the body's values.

    An empty list means Vibes would accept the body.
    """
    if not isinstance(body, Mapping):
        return ["the body must be a JSON object"]
    problems: list[str] = []
    event_type = body.get("event_type")
    if not isinstance(event_type, str):
        problems.append("event_type is required and must be a string")
    elif not is_valid_event_type(event_type):
        problems.append("event_type may hold only letters, digits, '-' and '_'")
    event_data = body.get("event_data")
    if not isinstance(event_data, Mapping):
        problems.append("event_data is required and must be an object")
    else:
        problems.extend(recipient_problems(event_data))
    if "event_id" in body:
        event_id = body["event_id"]
        if not isinstance(event_id, str) or not event_id:
            problems.append("event_id must be a non-empty string")
        elif len(event_id) > MAX_EVENT_ID_LENGTH:
            problems.append(f"event_id must be at most {MAX_EVENT_ID_LENGTH} characters")
    if "debug_data" in body and not isinstance(body["debug_data"], Mapping):
        problems.append("debug_data must be an object")
    unknown = set(body) - {"event_type", "event_data", "event_id", "debug_data"}
    if unknown:
        problems.append("unknown fields: " + ", ".join(sorted(unknown)))
    return problems
