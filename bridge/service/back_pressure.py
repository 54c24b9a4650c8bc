"""When the consumer pauses and resumes its partitions: the in-flight bound with hysteresis.

The bound on in-flight work is the offset tracker's count of unfinished records
and their bytes, not a queue. At either limit every assigned partition is paused;
they resume only once both are at or below half, so a consumer near its bound does
not pause and resume on every turn. Pure: the loop passes the totals in and does
what the verdict says.
"""

from __future__ import annotations

import enum


class Verdict(enum.Enum):
    """What the loop does to its assigned partitions this turn."""

    KEEP = "keep"
    PAUSE = "pause"
    RESUME = "resume"


class BackPressure:
    """Pause at the limits, resume at half of both."""

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._paused = False
        self._assignment_changed = False

    @property
    def paused(self) -> bool:
        return self._paused

    def assignment_changed(self) -> None:
        """New partitions: paused too if full and paused, else resumed on the next turn."""
        self._assignment_changed = True

    def decide(self, records: int, size: int) -> Verdict:
        """The verdict for ``records`` unfinished records of ``size`` bytes in all."""
        full = records >= self._max_records or size >= self._max_bytes
        roomy = records <= self._max_records // 2 and size <= self._max_bytes // 2
        changed, self._assignment_changed = self._assignment_changed, False
        if full and (not self._paused or changed):
            self._paused = True
            return Verdict.PAUSE
        if self._paused and roomy:
            self._paused = False
            return Verdict.RESUME
        if changed and not self._paused:
            # librdkafka keeps a partition's pause across a revocation and a new
            # assignment; a partition paused before it was lost would come back paused
            # while nothing here is, and never resume (the consumer stalls). Resume the
            # new assignment explicitly: resuming one that is not paused is harmless.
            return Verdict.RESUME
        return Verdict.KEEP
