"""Which offsets may be committed: a record counts only when it and all before it are finished.

A record is *finished* when every unit of work it produced is: each event
delivered (or acknowledged on the dead-letter topic), each dead letter
acknowledged by the broker. Records finish out of order (different keys are
delivered concurrently), so the tracker keeps, per partition, the offsets still
unfinished in arrival order, and the commit position is the first one not yet
finished. Committing past an unfinished record could lose a customer's message
after a crash; committing before a finished one only redelivers it, which the
deterministic event ids make harmless.

Only unfinished records are kept. Everything tracked between the commit
position and the *frontier* (the offset after the last record tracked) that is
not unfinished is finished, so the finished records behind a stuck one cost no
memory, and the in-flight totals (``records_in_flight``, ``bytes_in_flight``,
what back-pressure counts) are unfinished work only: a stuck key does not stop
the others. Each commit carries those finished offsets in its metadata
(:mod:`bridge.service.commit_metadata`), and a partition assigned with such a
commit skips them (:meth:`OffsetTracker.finished_before`): a restart redoes only
what was not finished.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from bridge.records import Partition, Position
from bridge.service import commit_metadata
from bridge.service.commit_metadata import Range

# ``order`` keeps finished offsets until they reach its head; past this many
# beyond twice the unfinished ones it is rebuilt, so it stays proportional to
# the unfinished work however long a head record is stuck.
_ORDER_SLACK = 64


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
    pending: dict[int, _Pending] = field(default_factory=dict)  # unfinished records only
    # Offsets of tracked unfinished records, ascending; finished ones leave lazily,
    # but never stay at the head, so order[0] is the oldest unfinished record.
    order: deque[int] = field(default_factory=deque)
    frontier: int | None = None  # the offset after the last record tracked
    committed: int | None = None  # the last position handed out for commit
    committed_metadata: str = ""  # and its metadata
    first_offset: int | None = None  # the first record tracked in this generation
    # Finished ranges read from the group's commit at assignment, not yet passed.
    inherited: deque[Range] = field(default_factory=deque)

    @property
    def next_position(self) -> int | None:
        """The first unfinished offset, else the frontier; None before any record."""
        return self.order[0] if self.order else self.frontier

    def finished_ranges(self) -> Iterator[Range]:
        """Finished offsets past the position: gaps between unfinished ones, then inherited."""
        frontier = self.frontier
        if frontier is None:
            return
        previous = self.order[0] if self.order else frontier
        for offset in self.order:
            if offset in self.pending:
                if offset > previous:
                    yield (previous, offset)
                previous = offset + 1
        if frontier > previous:
            yield (previous, frontier)
        for start, end in self.inherited:  # none of them consumed yet, so none unfinished here
            if end > frontier:
                yield (max(start, frontier), end)


class OffsetTracker:
    """Unfinished records per partition, the commit positions, and the in-flight totals."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        metadata_limit: int = commit_metadata.MAX_METADATA_BYTES,
    ) -> None:
        self._clock = clock
        self._metadata_limit = metadata_limit
        self._lock = threading.Lock()
        self._partitions: dict[Partition, _PartitionState] = {}
        self._generations: dict[Partition, int] = {}
        self._records = 0
        self._bytes = 0

    # ------------------------------------------------------------------ assignment

    def assign(self, topic: str, partition: int, start: Position | None = None) -> int:
        """Start tracking a newly assigned partition (a fresh generation).

        ``start`` is the group's committed position when it is known: the lag is
        then measured from it before this process has consumed or committed
        anything, and the finished offsets its metadata lists are skipped when
        they come (:meth:`finished_before`). Returns how many offsets it lists.
        """
        key = (topic, partition)
        inherited = (
            deque(commit_metadata.decode(start.metadata, start.offset))
            if start is not None
            else deque()
        )
        with self._lock:
            generation = self._generations.get(key, 0) + 1
            self._generations[key] = generation
            self._drop(key)
            self._partitions[key] = _PartitionState(
                generation,
                first_offset=None if start is None else start.offset,
                inherited=inherited,
            )
        return sum(end - begin for begin, end in inherited)

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

    def finished_before(self, topic: str, partition: int, offset: int) -> bool:
        """Whether the group's commit listed this offset as finished (skip its record).

        Records come in offset order, so ranges wholly before ``offset`` are
        passed and dropped: they are behind the frontier from now on.
        """
        with self._lock:
            state = self._partitions.get((topic, partition))
            if state is None:
                return False
            inherited = state.inherited
            while inherited and inherited[0][1] <= offset:
                inherited.popleft()
            return bool(inherited) and inherited[0][0] <= offset

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
            behind = state.frontier is not None and offset < state.frontier
            if not behind:
                state.frontier = offset + 1
            if units <= 0 or offset in state.pending:
                return ticket
            state.pending[offset] = _Pending(units, size, self._clock())
            if behind:  # never in the loop's order; kept correct all the same
                state.order = deque(sorted((*state.order, offset)))
            else:
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
            if entry is None:
                return False
            entry.remaining -= units
            if entry.remaining > 0:
                return False
            del state.pending[ticket.offset]
            self._records -= 1
            self._bytes -= entry.size
            self._tidy(state)
            return True

    @staticmethod
    def _tidy(state: _PartitionState) -> None:
        """Finished offsets leave the head at once, and the rest when they pile up."""
        order, pending = state.order, state.pending
        while order and order[0] not in pending:
            order.popleft()
        if len(order) > 2 * len(pending) + _ORDER_SLACK:
            state.order = deque(offset for offset in order if offset in pending)

    def is_current(self, ticket: Ticket) -> bool:
        """Whether the ticket's partition is still assigned in the same generation."""
        with self._lock:
            state = self._partitions.get((ticket.topic, ticket.partition))
            return state is not None and state.generation == ticket.generation

    # ------------------------------------------------------------------ commits

    def positions_to_commit(
        self, partitions: list[Partition] | None = None
    ) -> dict[Partition, Position]:
        """Positions (next offset to read, with the finished offsets past it as metadata)
        that changed since they were last handed out: the offset moved, or only the
        metadata did (more finished behind a stuck record, which a crash must not lose)."""
        with self._lock:
            keys = list(self._partitions) if partitions is None else partitions
            moved: dict[Partition, Position] = {}
            for key in keys:
                state = self._partitions.get(key)
                position = None if state is None else state.next_position
                if state is None or position is None:
                    continue
                if state.committed is not None and position < state.committed:
                    continue
                metadata = commit_metadata.encode(
                    position, state.finished_ranges(), self._metadata_limit
                )
                if state.committed is None:
                    changed = position != state.first_offset or bool(metadata)
                else:
                    changed = position > state.committed or metadata != state.committed_metadata
                if changed:
                    moved[key] = Position(position, metadata)
            return moved

    def committed(self, positions: dict[Partition, Position]) -> dict[Partition, int]:
        """Record that these positions were committed (so they are not handed out again).

        Returns how far each position moved, in offsets (records, but for compacted
        or transactional gaps), for the committed-records counter; a commit that
        changed only the metadata moved nothing and is left out.
        """
        moved: dict[Partition, int] = {}
        with self._lock:
            for key, (position, metadata) in positions.items():
                state = self._partitions.get(key)
                if state is None or (state.committed is not None and position < state.committed):
                    continue
                before = state.committed if state.committed is not None else state.first_offset
                if before is None or position > before:
                    moved[key] = position - (position if before is None else before)
                state.committed = position
                state.committed_metadata = metadata
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

        The head of ``order`` is always unfinished (``_tidy`` pops the finished
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
                    total += len(state.pending)
            return total


class Finisher(Protocol):
    """What finishes tickets: one tracker, or :class:`TicketRoutes` over several."""

    def finish(self, ticket: Ticket, units: int = 1) -> bool: ...

    def is_current(self, ticket: Ticket) -> bool: ...


class TicketRoutes:
    """Finishes each ticket in its own topic's tracker: the parked topic's records are
    counted apart from the source topics', so parked events waiting for their company
    never count against the main consumer's pending bound (docs/isolation.md)."""

    def __init__(self, main: OffsetTracker, by_topic: dict[str, OffsetTracker]) -> None:
        self._main = main
        self._by_topic = by_topic

    def _tracker(self, ticket: Ticket) -> OffsetTracker:
        return self._by_topic.get(ticket.topic, self._main)

    def finish(self, ticket: Ticket, units: int = 1) -> bool:
        return self._tracker(ticket).finish(ticket, units)

    def is_current(self, ticket: Ticket) -> bool:
        return self._tracker(ticket).is_current(ticket)
