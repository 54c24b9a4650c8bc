"""Which dead letters a replay takes: the operator's filters, and the progress group they imply.

Progress is committed per consumer group. A group per *selection* (the filters,
not ``--limit``) makes a replay mean "this selection, once": repeating the same
command finds nothing new, an interrupted one resumes, and replaying another
reason later is not hidden by a first replay that passed those letters over.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bridge.config.durations import parse_duration
from bridge.dead_letters import LATEST_TIME_MS
from bridge.replay.letters import ReplayLetter

_GROUP_HASH_CHARS = 10
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST: Final = "1970-01-01T00:00:00Z"
_LATEST: Final = "9999-12-31T23:59:59Z"
_SHOWN_CHARS: Final = 40


@dataclass(frozen=True, slots=True)
class Selection:
    """The filters of one replay; an empty selection takes every letter."""

    reasons: frozenset[str] = field(default_factory=frozenset)
    rule: str | None = None
    source_topic: str | None = None
    since_ms: int | None = None  # letters written at or after this time
    until_ms: int | None = None  # letters written before this time

    def __post_init__(self) -> None:
        for bound in (self.since_ms, self.until_ms):
            if bound is not None and not 0 <= bound <= LATEST_TIME_MS:
                raise ValueError(f"--since and --until must lie between {_EARLIEST} and {_LATEST}")
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
        if self.source_topic is not None and letter.source_topic != self.source_topic:
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

    Returns milliseconds since the epoch, the unit of Kafka timestamps, within
    the range a letter's time can have (1970 to 9999): outside it, or in no form
    at all, a ValueError of one line, never an OverflowError from the arithmetic.
    """
    try:
        moment = now - parse_duration(text)
    except ValueError:
        moment = _iso_time(text)
    except OverflowError:  # a duration ago before year 1
        raise _out_of_range(text) from None
    return _in_range(text, _ms(moment))


def _iso_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"invalid time {_shown(text)}: write an ISO 8601 time (2026-11-27T14:00:00Z) "
            f"or a duration ago (30m, 2h, 1d), between {_EARLIEST} and {_LATEST}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _in_range(text: str, ms: int) -> int:
    if not 0 <= ms <= LATEST_TIME_MS:
        raise _out_of_range(text)
    return ms


def _out_of_range(text: str) -> ValueError:
    return ValueError(
        f"time {_shown(text)} is out of range: Kafka timestamps run from {_EARLIEST} to {_LATEST}"
    )


def _shown(text: str) -> str:
    """The operator's text, quoted on one line and cut: it is echoed in an error."""
    quoted = repr(text)
    return quoted if len(quoted) <= _SHOWN_CHARS else quoted[: _SHOWN_CHARS - 3] + "..."


def _ms(moment: datetime) -> int:
    # Integer arithmetic on the timedelta: float seconds lose milliseconds near 9999.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="seconds")
