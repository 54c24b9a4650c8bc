"""Which dead letters a replay takes: the operator's filters, and the progress group they imply.

Progress is committed per consumer group. A group per *selection* (the filters,
not ``--limit``) makes a replay mean "this selection, once": repeating the same
command finds nothing new, an interrupted one resumes, and replaying another
reason later is not hidden by a first replay that passed those letters over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bridge.config.durations import parse_duration
from bridge.replay.letters import ReplayLetter

_GROUP_HASH_CHARS = 10


@dataclass(frozen=True, slots=True)
class Selection:
    """The filters of one replay; an empty selection takes every letter."""

    reasons: frozenset[str] = field(default_factory=frozenset)
    rule: str | None = None
    source_topic: str | None = None
    since_ms: int | None = None  # letters written at or after this time
    until_ms: int | None = None  # letters written before this time

    def __post_init__(self) -> None:
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.since_ms >= self.until_ms
        ):
            raise ValueError("--since must be earlier than --until")

    @property
    def is_everything(self) -> bool:
        return self == Selection()

    def matches(self, letter: ReplayLetter) -> bool:
        """Whether the operator asked for ``letter``."""
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.rule is not None and letter.rule != self.rule:
            return False
        if self.source_topic is not None and letter.source.topic != self.source_topic:
            return False
        return self._in_time(letter.written_ms)

    def _in_time(self, written_ms: int | None) -> bool:
        if self.since_ms is None and self.until_ms is None:
            return True
        if written_ms is None:  # a time filter cannot vouch for a letter without a time
            return False
        if self.since_ms is not None and written_ms < self.since_ms:
            return False
        return self.until_ms is None or written_ms < self.until_ms

    def group_id(self, run_group: str) -> str:
        """The replay's consumer group: ``<run group>.replay``, plus a hash of the filters."""
        base = f"{run_group}.replay"
        if self.is_everything:
            return base
        canonical = "|".join(
            (
                ",".join(sorted(self.reasons)),
                self.rule or "",
                self.source_topic or "",
                "" if self.since_ms is None else str(self.since_ms),
                "" if self.until_ms is None else str(self.until_ms),
            )
        )
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_GROUP_HASH_CHARS]
        return f"{base}.{digest}"

    def describe(self) -> str:
        """One line for the report (filters only hold names and times, never person data)."""
        parts = []
        if self.reasons:
            parts.append("reason in " + ",".join(sorted(self.reasons)))
        if self.rule is not None:
            parts.append(f"rule {self.rule}")
        if self.source_topic is not None:
            parts.append(f"source topic {self.source_topic}")
        if self.since_ms is not None:
            parts.append(f"since {_iso(self.since_ms)}")
        if self.until_ms is not None:
            parts.append(f"until {_iso(self.until_ms)}")
        return "; ".join(parts) if parts else "every dead letter"


def parse_time(text: str, now: datetime) -> int:
    """``--since``/``--until``: an ISO 8601 time (UTC unless it says) or a duration ago (``2h``).

    Returns milliseconds since the epoch, the unit of Kafka timestamps.
    """
    try:
        return _ms(now - parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: write an ISO 8601 time (2026-11-27T14:00:00Z) "
            "or a duration ago (30m, 2h, 1d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _ms(moment)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
