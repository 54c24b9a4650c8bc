"""Everyone's latest wants, each with an expiry: the table every member plans from.

Expiry runs on the reader's own monotonic clock, so hosts with skewed clocks
agree on it: an entry lives ``ttl`` seconds from when it was read, minus the
age it already had when it arrived (from the record's timestamp; that bounds
how long a dead member's last entry counts after a restart reads it back from
the compacted topic). A member that stops publishing (killed, partitioned
away) drops out of everyone's split after ``ttl``. Each entry also says whether
its member lends its floor when idle (``bridge.fleet.shares``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Entry:
    """A member's wants, when they stop counting (monotonic seconds), and whether it lends."""

    wants: Mapping[str, float]
    expires_at: float
    lends: bool = False


class BudgetTable:
    """The live entries of one group, by member id."""

    def __init__(self, group: str) -> None:
        self.group = group
        self._entries: dict[str, Entry] = {}

    def put(
        self,
        member: str,
        wants: Mapping[str, float],
        *,
        ttl: float,
        age: float,
        now: float,
        lends: bool = False,
    ) -> None:
        """Record a member's entry that was ``age`` seconds old when read at ``now``."""
        self._entries[member] = Entry(dict(wants), now + ttl - max(age, 0.0), lends)

    def remove(self, member: str) -> None:
        """The member left (a tombstone)."""
        self._entries.pop(member, None)

    def live(self, now: float) -> dict[str, Entry]:
        """The entries that have not expired; expired ones are dropped."""
        expired = [member for member, entry in self._entries.items() if entry.expires_at <= now]
        for member in expired:
            del self._entries[member]
        return dict(self._entries)

    def wants_for(self, company_key: str, now: float) -> dict[str, float]:
        """Every live member's want of one key (0 for a member that did not name it)."""
        return {
            member: entry.wants.get(company_key, 0.0) for member, entry in self.live(now).items()
        }

    def lenders(self, now: float) -> set[str]:
        """The live members that lend their floor of a key they want nothing of."""
        return {member for member, entry in self.live(now).items() if entry.lends}

    def company_keys(self, now: float) -> set[str]:
        """Every key some live member wants."""
        return {key for entry in self.live(now).values() for key in entry.wants}
