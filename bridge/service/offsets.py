"""Which offsets may be committed: a record counts only when it and all before it are finished.

A record is *finished* when every unit of work it produced is: each event
delivered (or acknowledged on the dead-letter topic), each dead letter
acknowledged by the broker. Records finish out of order (different keys are
delivered concurrently), so the tracker keeps, per partition, the offsets still
pending in arrival order, and the commit position is the first one not yet
finished. Committing past an unfinished record could lose a customer's message
after a crash; committing before a finished one only redelivers it, which the
deterministic event ids make harmless.

Pure and thread-safe: the consumer thread adds records and takes commit
positions, the delivery loop finishes work, under one lock. Each assignment of
a partition has a generation, so work that finishes after its partition was
revoked (and maybe assigned again) cannot move the new owner's position.

It also knows, per partition, since when its oldest unfinished record has
waited (``oldest_unfinished_ages``): a record stuck at the head of a partition
holds its commits back, and that age makes the stall visible. Time comes from
an injected clock, so the tracker stays pure.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from bridge.records import Partition


class Ticket(NamedTuple):
    """What a unit of work hands back when it is done: the record and its partition's generation."""

    topic: str
    partition: int
    offset: int
    generation: int


@dataclass(slots=True)
class _Pending:
    remaining: int
    size: int
    since: float = 0.0  # the tracker's clock when the record was added


@dataclass(slots=True)
class _PartitionState:
    generation: int
    pending: dict[int, _Pending] = field(default_factory=dict)
    order: deque[int] = field(default_factory=deque)  # pending offsets, ascending
    next_position: int | None = None  # the offset after the last finished prefix
    committed: int | None = None  # the last position handed out for commit
    first_offset: int | None = None  # the first record tracked in this generation


class OffsetTracker:
    """Pending records per partition, the commit positions, and the in-flight totals."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._partitions: dict[Partition, _PartitionState] = {}
        self._generations: dict[Partition, int] = {}
        self._records = 0
        self._bytes = 0

    # ------------------------------------------------------------------ assignment

    def assign(self, topic: str, partition: int, start: int | None = None) -> None:
        """Start tracking a newly assigned partition (a fresh generation).

        ``start`` is the group's committed position when it is known: the lag is
        then measured from it before this process has consumed or committed anything.
        """
        key = (topic, partition)
        with self._lock:
            generation = self._generations.get(key, 0) + 1
            self._generations[key] = generation
            self._drop(key)
            self._partitions[key] = _PartitionState(generation, first_offset=start)

    def revoke(self, topic: str, partition: int) -> None:
        """Forget a partition; its unfinished work no longer counts anywhere."""
        with self._lock:
            self._drop((topic, partition))

    def _drop(self, key: Partition) -> None:
        state = self._partitions.pop(key, None)
        if state is not None:
            self._records -= len(state.pending)
            self._bytes -= sum(entry.size for entry in state.pending.values())

    # ------------------------------------------------------------------ work

    def add(self, topic: str, partition: int, offset: int, *, units: int, size: int) -> Ticket:
        """Track a consumed record with ``units`` pieces of work (0: finished already)."""
        key = (topic, partition)
        with self._lock:
            state = self._partitions.get(key)
            if state is None:  # consumed before the assignment was seen: track it anyway
                generation = self._generations.get(key, 0) + 1
                self._generations[key] = generation
                state = self._partitions[key] = _PartitionState(generation)
            ticket = Ticket(topic, partition, offset, state.generation)
            if state.first_offset is None:
                state.first_offset = offset
            if units <= 0:
                if not state.order:
                    state.next_position = offset + 1
                else:  # behind pending records: remember it as finished, in order
                    state.pending[offset] = _Pending(0, 0)
                    state.order.append(offset)
                    self._records += 1
                return ticket
            state.pending[offset] = _Pending(units, size, self._clock())
            state.order.append(offset)
            self._records += 1
            self._bytes += size
            return ticket

    def finish(self, ticket: Ticket, units: int = 1) -> bool:
        """One unit of the record is done; True when that finished the whole record."""
        key = (ticket.topic, ticket.partition)
        with self._lock:
            state = self._partitions.get(key)
            if state is None or state.generation != ticket.generation:
                return False  # revoked meanwhile: the new owner redelivers it
            entry = state.pending.get(ticket.offset)
            if entry is None or entry.remaining <= 0:
                return False
            entry.remaining -= units
            if entry.remaining > 0:
                return False
            self._bytes -= entry.size
            entry.size = 0
            self._advance(state)
            return True

    def _advance(self, state: _PartitionState) -> None:
        while state.order and state.pending[state.order[0]].remaining <= 0:
            offset = state.order.popleft()
            del state.pending[offset]
            self._records -= 1
            state.next_position = offset + 1

    def is_current(self, ticket: Ticket) -> bool:
        """Whether the ticket's partition is still assigned in the same generation."""
        with self._lock:
            state = self._partitions.get((ticket.topic, ticket.partition))
            return state is not None and state.generation == ticket.generation

    # ------------------------------------------------------------------ commits

    def positions_to_commit(
        self, partitions: list[Partition] | None = None
    ) -> dict[Partition, int]:
        """Positions (next offset to read) that moved since they were last handed out."""
        with self._lock:
            keys = list(self._partitions) if partitions is None else partitions
            moved: dict[Partition, int] = {}
            for key in keys:
                state = self._partitions.get(key)
                if state is None or state.next_position is None:
                    continue
                if state.committed is None or state.next_position > state.committed:
                    moved[key] = state.next_position
            return moved

    def committed(self, positions: dict[Partition, int]) -> dict[Partition, int]:
        """Record that these positions were committed (so they are not handed out again).

        Returns how far each position moved, in offsets (records, but for compacted
        or transactional gaps), for the committed-records counter.
        """
        moved: dict[Partition, int] = {}
        with self._lock:
            for key, position in positions.items():
                state = self._partitions.get(key)
                if state is None or (state.committed is not None and position <= state.committed):
                    continue
                before = state.committed if state.committed is not None else state.first_offset
                moved[key] = position - (position if before is None else before)
                state.committed = position
        return moved

    def committed_position(self, topic: str, partition: int) -> int | None:
        with self._lock:
            state = self._partitions.get((topic, partition))
            return None if state is None else state.committed

    def lag_position(self, topic: str, partition: int) -> int | None:
        """Where the lag is measured from: the last commit, else where this assignment started.

        The start is the group's committed position given to :meth:`assign`, else
        the first record consumed; ``None`` while neither is known.
        """
        with self._lock:
            state = self._partitions.get((topic, partition))
            if state is None:
                return None
            return state.committed if state.committed is not None else state.first_offset

    def oldest_unfinished_ages(self) -> dict[Partition, float]:
        """Per tracked partition, seconds its oldest unfinished record has waited (0: none).

        The head of ``order`` is always unfinished (``_advance`` pops the finished
        prefix) and records are added in offset order, so it is the oldest.
        """
        now = self._clock()
        with self._lock:
            ages: dict[Partition, float] = {}
            for key, state in self._partitions.items():
                head = state.pending[state.order[0]] if state.order else None
                ages[key] = 0.0 if head is None else max(0.0, now - head.since)
            return ages

    # ------------------------------------------------------------------ totals

    @property
    def records_in_flight(self) -> int:
        """Records consumed and not yet finished (back-pressure counts these)."""
        return self._records

    @property
    def bytes_in_flight(self) -> int:
        """The value bytes of those records."""
        return self._bytes

    def pending_in(self, partitions: list[Partition]) -> int:
        """Unfinished records in these partitions (revocation waits for them)."""
        with self._lock:
            total = 0
            for key in partitions:
                state = self._partitions.get(key)
                if state is not None:
                    total += sum(1 for entry in state.pending.values() if entry.remaining > 0)
            return total
