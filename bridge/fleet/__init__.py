"""The fleet-wide rate budget: pure planning, no I/O.

Every process of a consumer group publishes what it wants per company key to a
small compacted topic (``bridge.kafka.budget_topic``) and reads everyone's
entries back; from the same table each process computes the same max-min fair
split of ``vibes.requests_per_second``, and takes its own part. This package
holds the pieces that decide: the wire format of an entry, the table with
expiry, the want of one process (and when to publish it early), and the split,
in which idle members lend their floor to busy ones. ``bridge.service.fleet_budget``
wires them to Kafka and to the limiter. See docs/fleet-budget.md.
"""

from bridge.fleet.demand import DemandMeter, KeyUsage, wanted_rate
from bridge.fleet.planner import SharePlanner
from bridge.fleet.shares import fair_shares, member_floor
from bridge.fleet.table import BudgetTable, Entry
from bridge.fleet.wire import MalformedEntry, decode_entry, encode_entry

__all__ = [
    "BudgetTable",
    "DemandMeter",
    "Entry",
    "KeyUsage",
    "MalformedEntry",
    "SharePlanner",
    "decode_entry",
    "encode_entry",
    "fair_shares",
    "member_floor",
    "wanted_rate",
]
