"""Parking a paused company's events (docs/isolation.md, "Parking"): when, and in which order.

Pure, with an injected clock. :class:`ParkingPolicy` decides when a company key
parks: it is paused (credentials rejected, circuit open or held by 429s) and has
been for ``after_seconds``, or its waiting events reached ``waiting_limit`` (half
the pending bound), whichever comes first. It also keeps the per-(company key,
record key) order rule: once a pair has an event parked, every later event of the
pair is parked behind it until the parked ones are delivered, so a customer's
events are either all still in their lane or parked in order behind each other.

:func:`prepare_parked` turns a record of the parked topic back into the work it
holds (its event, or a dead letter when the record is not a parked event), for
the parking consumer, which is built like the main one
(``bridge/service/consumer_loop.py``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from bridge.dead_letters import dead_letter
from bridge.errors import DecodeCode, DecodeError
from bridge.parking import NotParked, read_parked
from bridge.records import SourceRecord
from bridge.service.stages import PreparedRecord

Pair = tuple[str, bytes | None]
"""A company key and a record key: the unit of order."""


class ParkingPolicy:
    """Which company keys park now, and which (company key, record key) pairs must park."""

    def __init__(
        self,
        *,
        after_seconds: float,
        waiting_limit: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._after = after_seconds
        self._waiting_limit = waiting_limit
        self._clock = clock
        self._paused_since: dict[str, float] = {}
        self._parking: set[str] = set()
        self._waiting: Counter[str] = Counter()  # live events not finished, per company key
        self._parked: Counter[Pair] = Counter()  # parked, not delivered yet, per pair
        self._ever: set[str] = set()  # keys that parked: their gauge stays, at 0 when drained
        self.available = True  # False while the parked topic is missing: nothing parks

    def arrived(self, company_key: str) -> None:
        """A live (not replayed) event of the key is queued."""
        self._waiting[company_key] += 1

    def left(self, company_key: str) -> None:
        """A live event of the key is delivered, dead-lettered, parked or dropped."""
        self._waiting[company_key] -= 1
        if self._waiting[company_key] <= 0:
            del self._waiting[company_key]

    def companies(self) -> set[str]:
        """The keys worth looking at: those with waiting events or a pause under way."""
        return set(self._waiting) | set(self._paused_since)

    def observe(self, company_key: str, paused: bool) -> bool:
        """The key's state now; True while it parks (its waiting events are withdrawn)."""
        if not paused:
            self._paused_since.pop(company_key, None)
            self._parking.discard(company_key)
            return False
        since = self._paused_since.setdefault(company_key, self._clock())
        if company_key in self._parking:
            return True
        if not self.available:
            return False
        if (
            self._clock() - since >= self._after
            or self._waiting[company_key] >= self._waiting_limit
        ):
            self._parking.add(company_key)
            return True
        return False

    def must_park(self, pair: Pair) -> bool:
        """Park this live event now: its key parks, or the pair has parked events before it."""
        if not self.available:
            return False
        return pair[0] in self._parking or (pair[1] is not None and self._parked[pair] > 0)

    def parked(self, pair: Pair) -> None:
        """An event of the pair is on its way to the parked topic."""
        self._parked[pair] += 1
        self._ever.add(pair[0])

    def replayed(self, pair: Pair) -> None:
        """A parked event of the pair is finished (delivered or dead-lettered)."""
        if self._parked[pair] > 1:
            self._parked[pair] -= 1
        else:
            self._parked.pop(pair, None)

    def pending(self) -> dict[str, int]:
        """Parked, not yet delivered events per company key (the gauge)."""
        counts: Counter[str] = Counter(dict.fromkeys(self._ever, 0))
        for (company_key, _key), count in self._parked.items():
            counts[company_key] += count
        return dict(counts)


def prepare_parked(record: SourceRecord) -> PreparedRecord:
    """The work a parked topic's record holds: its event, or a dead letter when the bridge
    did not write it (``schema_mismatch``: it is not a parked event)."""
    try:
        event = read_parked(record.value)
    except NotParked as error:
        letter = dead_letter(
            record, DecodeError(DecodeCode.SCHEMA_MISMATCH, f"not a parked event: {error}")
        )
        return PreparedRecord(record, (), (letter,), True)
    return PreparedRecord(record, (event,), (), True)
