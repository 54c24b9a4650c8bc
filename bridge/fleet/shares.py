"""Split one company key's budget among the members of a group: max-min fair, with a floor.

Max-min fairness (water-filling): a member that wants less than an equal part
gets what it wants, and what it leaves over is split among the members that
want more. That is what the skew goal needs: a replica whose partitions are
quiet keeps only what it uses, and the replica with the hot partition gets the
rest. Proportional-to-backlog splits (the issue's first suggestion) give a hot
member most of the budget too, but they starve a member with a small, steady
stream whenever another has a large backlog, and backlog sizes are bounded by
``max_pending_records`` anyway, so they carry little signal.

Whatever is left once every want is met is spread equally, so a member can
grow into a burst at once instead of a publish round later; the sum is still
the budget. Every member gets at least :func:`member_floor`, so one whose work
has just begun (its want not published yet) is never at zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

# A member's floor: this fraction of the budget, but never more than an equal part.
FLOOR_FRACTION: Final = 0.02


def member_floor(budget: float, members: int) -> float:
    """The least rate any member gets: 2 % of the budget, at most an equal part."""
    return min(budget * FLOOR_FRACTION, budget / max(members, 1))


def fair_shares(budget: float, wants: Mapping[str, float]) -> dict[str, float]:
    """Each member's share of ``budget`` given what each wants (requests per second).

    The shares never sum above ``budget``, and each is at least
    :func:`member_floor`. Wants that are negative, NaN or infinite count as the
    floor or the whole budget; a malformed entry must not break the split.
    """
    if not wants:
        return {}
    floor = member_floor(budget, len(wants))
    demands = {member: _clamp(want, floor, budget) for member, want in wants.items()}
    shares: dict[str, float] = {}
    remaining = budget
    ordered = sorted(demands.items(), key=lambda item: (item[1], item[0]))
    for index, (member, demand) in enumerate(ordered):
        equal_part = remaining / (len(ordered) - index)
        shares[member] = min(demand, equal_part)
        remaining -= shares[member]
    if remaining > 0:  # every want met: spread the rest as headroom
        extra = remaining / len(shares)
        shares = {member: share + extra for member, share in shares.items()}
    return shares


def _clamp(want: float, floor: float, budget: float) -> float:
    if math.isnan(want):
        return floor
    return min(max(want, floor), budget)
