"""How badly the simulated Vibes behaves: latency and injected failures.

The settings are one frozen value so that ``POST /_sim/faults`` can swap them in
a single assignment: a request in flight sees either the old or the new
behaviour, never half of each. The random draws go through an injected
``random.Random`` so that a seed (``--seed``) replays the same fault sequence and
tests can pin the outcome without sockets.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Self


class Fault(StrEnum):
    """One injected failure; the value is the ``faults_*`` stats suffix."""

    DROP = "drop"
    TIMEOUT = "timeout"
    ERROR_500 = "500"
    ERROR_503 = "503"


class SettingsError(ValueError):
    """Settings that cannot be applied; carries every problem, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


SHARE_FIELDS: Final = ("error_rate", "error_500_rate", "timeout_rate", "drop_rate")
"""Shares of requests answered with a fault; together they must not exceed 1."""


@dataclass(frozen=True, slots=True)
class KnobRange:
    """The values a knob accepts: ``low`` to ``high``, and 0 as well when ``zero_is_off``.

    Bounds keep every derived figure finite: a rate far below ``low`` (a
    denormal such as 5e-324) makes the Retry-After arithmetic overflow, and
    an hour is longer than any client's timeout, so longer delays only hide typos.
    """

    low: float
    high: float
    zero_is_off: bool = False

    def allows(self, value: float) -> bool:
        """Whether ``value`` is in range (NaN never is)."""
        if self.zero_is_off and value == 0:
            return True
        return self.low <= value <= self.high

    def describe(self) -> str:
        """The range in words, for error messages and ``--help``."""
        span = f"between {_number(self.low)} and {_number(self.high)}"
        return f"0 (off) or {span}" if self.zero_is_off else span


ONE_HOUR_MS: Final = 3_600_000
ONE_HOUR_S: Final = 3_600
MAX_RATE: Final = 1_000_000
"""Far above what one simulator process can serve (about 15,000 requests/s)."""
MIN_RATE: Final = 0.001
"""One request per 1,000 s: Retry-After then stays below about 17 minutes."""

KNOB_RANGES: Final = {
    "latency_ms": KnobRange(0, ONE_HOUR_MS),
    "latency_jitter_ms": KnobRange(0, ONE_HOUR_MS),
    "rate_limit": KnobRange(MIN_RATE, MAX_RATE, zero_is_off=True),
    "rate_limit_burst": KnobRange(0, MAX_RATE),
    "error_rate": KnobRange(0, 1),
    "error_500_rate": KnobRange(0, 1),
    "timeout_rate": KnobRange(0, 1),
    "timeout_hold_s": KnobRange(0, ONE_HOUR_S),
    "drop_rate": KnobRange(0, 1),
}
"""Every run-time knob's accepted values; the command line and ``/_sim/faults`` share them."""


def _number(value: float) -> str:
    """``3600000`` rather than ``3.6e+06``, ``0.001`` as it is."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Every run-time knob; the field names are the ``/_sim/faults`` JSON keys.

    ``rate_limit`` is requests per second per company key (0: unlimited) and
    ``rate_limit_burst`` the token-bucket capacity (0: one second's worth).
    :data:`KNOB_RANGES` says what each accepts.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    rate_limit: float = 0.0
    rate_limit_burst: float = 0.0
    error_rate: float = 0.0
    error_500_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_hold_s: float = 30.0
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        problems = _range_problems(self)
        if problems:
            raise SettingsError(problems)

    def merged(self, patch: Any) -> FaultSettings:
        """These settings with ``patch`` applied, as ``POST /_sim/faults`` needs.

        A partial update keeps every knob the patch does not name; unknown keys
        and non-numbers are refused rather than ignored, so a typo is visible.
        """
        if not isinstance(patch, Mapping):
            raise SettingsError(["the settings must be a JSON object"])
        names = {field.name for field in dataclasses.fields(self)}
        problems = [
            f"unknown setting: {key}" for key in sorted(map(str, patch)) if key not in names
        ]
        changes: dict[str, float] = {}
        for key, value in patch.items():
            if key not in names:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(f"{key} must be a number")
            else:
                changes[key] = float(value)
        if problems:
            raise SettingsError(problems)
        return dataclasses.replace(self, **changes)

    def as_json(self) -> dict[str, float]:
        """The settings as the JSON object ``/_sim/faults`` answers."""
        return dataclasses.asdict(self)

    @property
    def fault_share(self) -> float:
        """The share of requests that get any injected fault."""
        return self.error_rate + self.error_500_rate + self.timeout_rate + self.drop_rate


def _range_problems(settings: FaultSettings) -> list[str]:
    problems = [
        f"{name} must be {knob.describe()}"
        for name, knob in KNOB_RANGES.items()
        if not knob.allows(getattr(settings, name))
    ]
    if not problems and settings.fault_share > 1 + 1e-9:
        problems.append("error_rate + error_500_rate + timeout_rate + drop_rate must not exceed 1")
    return problems


class FaultPlan:
    """Draws each request's latency and fault from one settings value.

    Built once per settings change so the hot path only reads precomputed
    flags: with everything at zero it makes no random draw at all.
    """

    __slots__ = ("_base_s", "_jitter_s", "_rng", "_table", "has_faults", "has_latency", "settings")

    def __init__(self, settings: FaultSettings, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self._base_s = settings.latency_ms / 1000.0
        self._jitter_s = settings.latency_jitter_ms / 1000.0
        self.has_latency = self._base_s > 0 or self._jitter_s > 0
        table: list[tuple[float, Fault]] = []
        threshold = 0.0
        for share, fault in (
            (settings.drop_rate, Fault.DROP),
            (settings.timeout_rate, Fault.TIMEOUT),
            (settings.error_500_rate, Fault.ERROR_500),
            (settings.error_rate, Fault.ERROR_503),
        ):
            if share > 0:
                threshold += share
                table.append((threshold, fault))
        if table and threshold > 1 - 1e-9:
            # Shares that add up to 1 must fault every request despite float rounding.
            table[-1] = (1.0, table[-1][1])
        self._table = tuple(table)
        self.has_faults = bool(table)

    def delay_s(self) -> float:
        """``latency_ms`` plus a uniform draw in ``[0, latency_jitter_ms]``, in seconds."""
        if self._jitter_s > 0:
            return self._base_s + self._rng.uniform(0.0, self._jitter_s)
        return self._base_s

    def choose(self) -> Fault | None:
        """One draw decides the request's fate; ``None`` means behave normally."""
        if not self._table:
            return None
        draw = self._rng.random()
        for threshold, fault in self._table:
            if draw < threshold:
                return fault
        return None


MAX_PATTERN_LENGTH: Final = 256
FAIL_SECONDS: Final = KnobRange(0.001, ONE_HOUR_S)


@dataclass(frozen=True, slots=True)
class FailingEvents:
    """503 for every event whose ``event_id`` matches a pattern, for a time or until cleared.

    Unlike the shares above, which fail requests at random, this fails chosen
    events every time: a key stuck in retries while the others flow. The
    pattern is a Python regular expression searched in the ``event_id``
    (anchor it with ``^``/``$``); ``until`` is the simulator's monotonic clock
    at which it lapses, ``None`` for never.
    """

    pattern: re.Pattern[str] | None = None
    until: float | None = None

    def fails(self, event_id: str, now: float) -> bool:
        """Whether this event is to be answered 503 now."""
        if self.pattern is None or (self.until is not None and now >= self.until):
            return False
        return self.pattern.search(event_id) is not None

    @classmethod
    def parse(cls, body: Any, now: float) -> Self:
        """From ``POST /_sim/failing``: ``{"event_id_pattern": "...", "seconds": 60}``."""
        if not isinstance(body, Mapping):
            raise SettingsError(["the settings must be a JSON object"])
        problems = [
            f"unknown setting: {key}"
            for key in sorted(map(str, body))
            if key not in ("event_id_pattern", "seconds")
        ]
        pattern_text = body.get("event_id_pattern")
        pattern: re.Pattern[str] | None = None
        if not isinstance(pattern_text, str) or not 0 < len(pattern_text) <= MAX_PATTERN_LENGTH:
            problems.append(
                f"event_id_pattern must be a string of 1 to {MAX_PATTERN_LENGTH} characters"
            )
        else:
            try:
                pattern = re.compile(pattern_text)
            except re.error:
                problems.append("event_id_pattern is not a valid regular expression")
        seconds = body.get("seconds")
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not FAIL_SECONDS.allows(seconds)
        ):
            problems.append(f"seconds must be {FAIL_SECONDS.describe()}")
        if problems:
            raise SettingsError(problems)
        return cls(pattern, None if seconds is None else now + float(seconds))

    def as_json(self, now: float) -> dict[str, Any]:
        """What ``/_sim/failing`` answers: the pattern and the seconds left (null: no end)."""
        if self.pattern is None or (self.until is not None and now >= self.until):
            return {"event_id_pattern": None, "seconds_left": None}
        left = None if self.until is None else round(self.until - now, 3)
        return {"event_id_pattern": self.pattern.pattern, "seconds_left": left}
