"""This member's share of each company key's budget, from the table, safely in time.

All members compute :func:`fair_shares` from the same table, so their shares
sum to the budget; but each reads the topic on its own schedule. These rules
keep the sum within the budget while views differ:

- **lower at once, raise late**: a smaller share applies at once; a larger one
  only once it has stood for ``settle`` seconds, by when every member has read
  the entry that freed the room and lowered its own share;
- **no entry, no split**: until this member has read its own entry back, it
  takes only the floor: the conservative start, while the others still use the
  whole budget. Its first real share is a raise, so it waits ``settle`` more,
  by when the others have read the same entry and made room;
- **lost link**: when its own entry has expired but others' live, the others
  have split the budget without it: it takes the floor. When every entry has
  expired (the topic is unreachable for everyone), it takes the static share,
  ``budget / members last seen``, as everyone else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.fleet.shares import FLOOR_FRACTION, fair_shares
from bridge.fleet.table import BudgetTable


@dataclass(slots=True)
class SharePlanner:
    """Turns the table into this member's share per company key; pure, time passed in."""

    member: str
    budget: float
    settle: float
    # Company keys with a budget of their own (vibes.companies.<key>.requests_per_second).
    key_budgets: dict[str, float] = field(default_factory=dict)
    _joined: bool = False
    _members_seen: int = 1
    _applied: dict[str, float] = field(default_factory=dict)
    _raise_since: dict[str, float] = field(default_factory=dict)

    @property
    def start_share(self) -> float:
        """The share before anything is known: the floor, 2 % of the budget."""
        return self.budget * FLOOR_FRACTION

    def budget_for(self, company_key: str) -> float:
        """The group's budget for ``company_key``: its own, or the common one."""
        return self.key_budgets.get(company_key, self.budget)

    def start_share_for(self, company_key: str) -> float:
        """:attr:`start_share` of the key's own budget."""
        return self.budget_for(company_key) * FLOOR_FRACTION

    def static_share(self, members: int | None = None, company_key: str | None = None) -> float:
        """Without a working table: an equal part among the members last seen."""
        count = members if members is not None else self._members_seen
        budget = self.budget if company_key is None else self.budget_for(company_key)
        return budget / max(count, 1)

    def share(self, table: BudgetTable, company_key: str, now: float) -> float:
        """This member's share of ``company_key`` at ``now``."""
        wants = table.wants_for(company_key, now)
        if self.member not in wants:
            in_the_dark = self._joined and not wants  # nobody's entry reaches anyone
            if in_the_dark:
                target = self.static_share(company_key=company_key)
            else:
                target = self.start_share_for(company_key)
            return self._lower_at_once_raise_late(company_key, target, now)
        self._joined = True
        self._members_seen = len(wants)
        target = fair_shares(self.budget_for(company_key), wants)[self.member]
        return self._lower_at_once_raise_late(company_key, target, now)

    def _lower_at_once_raise_late(self, company_key: str, target: float, now: float) -> float:
        applied = self._applied.get(company_key)
        if applied is None or target <= applied:
            self._raise_since.pop(company_key, None)
            self._applied[company_key] = target
            return target
        since = self._raise_since.setdefault(company_key, now)
        if now - since >= self.settle:
            del self._raise_since[company_key]
            self._applied[company_key] = target
            return target
        return applied
