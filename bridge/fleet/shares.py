"""Split one key's budget among a group's members: max-min fair, with a floor, lent when idle.

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

**Lending.** A member that wants nothing of the key (it sent nothing and
nobody waited for a slot over its last window) and says it *lends* (entries
of this version do; older members' entries do not, and keep their floor) gives
its floor up while another member wants more than the split gives it: the
idle member's share is 0 and the others are split as if it were not there.
It gets a floor back when it publishes a want again
(``bridge.fleet.demand``). When every want is met anyway, nothing is lent: an
idle member keeps its floor and its part of the headroom, so a lone or
lightly loaded group never makes new work wait for a publish round.

Mixed versions stay within the budget: a member that does not lend computes the
split without lending, and lending only ever raises the shares of the members
that do not lend their floor (a property test checks the sum over any mix).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Final

# A member's floor: this fraction of the budget, but never more than an equal part.
FLOOR_FRACTION: Final = 0.02
# Relative slack when comparing a share with its demand (float sums).
_TOLERANCE: Final = 1e-9


def member_floor(budget: float, members: int) -> float:
    """The least rate any member with a want gets: 2 % of the budget, at most an equal part."""
    return min(budget * FLOOR_FRACTION, budget / max(members, 1))


def fair_shares(
    budget: float, wants: Mapping[str, float], lenders: Collection[str] = ()
) -> dict[str, float]:
    """Each member's share of ``budget`` given what each wants (requests per second).

    The shares never sum above ``budget``. Each is at least
    :func:`member_floor`, except an idle member of ``lenders`` (one that wants
    0) while the others want more than they would get: it gets 0 and the
    others split the whole budget. Wants that are negative, NaN or infinite
    count as the floor or the whole budget; a malformed entry must not break
    the split.
    """
    if not wants:
        return {}
    shares, unmet = _water_fill(budget, wants)
    idle = [member for member in wants if member in lenders and wants[member] == 0]
    if not unmet or not idle or len(idle) == len(wants):
        return shares
    busy = {member: want for member, want in wants.items() if member not in idle}
    lent, _unmet = _water_fill(budget, busy)
    return {**lent, **dict.fromkeys(idle, 0.0)}


def _water_fill(budget: float, wants: Mapping[str, float]) -> tuple[dict[str, float], bool]:
    """The max-min fair split with a floor; True when some member gets less than it wants."""
    floor = member_floor(budget, len(wants))
    demands = {member: _clamp(want, floor, budget) for member, want in wants.items()}
    shares: dict[str, float] = {}
    remaining = budget
    ordered = sorted(demands.items(), key=lambda item: (item[1], item[0]))
    for index, (member, demand) in enumerate(ordered):
        equal_part = remaining / (len(ordered) - index)
        shares[member] = min(demand, equal_part)
        remaining -= shares[member]
    unmet = any(shares[member] < demand * (1 - _TOLERANCE) for member, demand in demands.items())
    if remaining > 0:  # every want met: spread the rest as headroom
        extra = remaining / len(shares)
        shares = {member: share + extra for member, share in shares.items()}
    return shares, unmet


def _clamp(want: float, floor: float, budget: float) -> float:
    if math.isnan(want):
        return floor
    return min(max(want, floor), budget)
