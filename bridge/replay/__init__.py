"""``vibes-bridge replay``'s pure half: read dead letters back, select them, tally the outcome.

No I/O here: ``bridge.service.replay`` fetches the letters from Kafka and
delivers through the same path as ``run``; this package decides what a letter
was, whether the operator selected it, and what to report.
"""

from bridge.replay.letters import NotADeadLetter, ReplayLetter, read_letter
from bridge.replay.report import ReplayReport
from bridge.replay.selection import Selection, parse_time

__all__ = [
    "NotADeadLetter",
    "ReplayLetter",
    "ReplayReport",
    "Selection",
    "parse_time",
    "read_letter",
]
