"""Fakes for the consumer loop's unit tests: a source, a clock, a producer, a dispatcher.

Kept beside the tests that use them (tests/support is another helper's), and
small on purpose: each records what the loop asked of it, so a test states the
loop's decisions without a broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bridge.kafka.consumer import ConsumerTrouble
from bridge.records import Partition, Position, SourceRecord
from bridge.service.dispatch import Delivery

Acknowledgement = Callable[[str | None], None]


class FakeClock:
    """A monotonic clock that moves only when told (or when a fake waits on it)."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSource:
    """The KafkaSource methods the loop and the committer use, over scripted batches."""

    assigned: list[Partition]
    batches: deque[list[SourceRecord | ConsumerTrouble]] = field(default_factory=deque)
    highs: dict[Partition, int] = field(default_factory=dict)
    accept_commits: bool = True
    paused: set[Partition] = field(default_factory=set)
    seeks: list[tuple[Partition, int]] = field(default_factory=list)
    commits: list[dict[Partition, int]] = field(default_factory=list)  # the offsets
    metadata: list[dict[Partition, str]] = field(default_factory=list)  # and their metadata
    group_positions: dict[Partition, Position] = field(default_factory=dict)  # committed()
    fetch_sizes: list[int] = field(default_factory=list)
    closed: bool = False
    on_fetch: Callable[[], None] | None = None

    def fetch(self, max_records: int, timeout: float) -> list[SourceRecord | ConsumerTrouble]:
        self.fetch_sizes.append(max_records)
        if self.on_fetch is not None:
            self.on_fetch()
        return self.batches.popleft() if self.batches else []

    def pause(self, partitions: Iterable[Partition]) -> None:
        self.paused.update(partitions)

    def resume(self, partitions: Iterable[Partition]) -> None:
        self.paused.difference_update(partitions)

    def seek(self, partition: Partition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def assignment(self) -> list[Partition]:
        return list(self.assigned)

    def commit(self, positions: Mapping[Partition, Position]) -> bool:
        if self.accept_commits:
            self.commits.append({key: position.offset for key, position in positions.items()})
            self.metadata.append({key: position.metadata for key, position in positions.items()})
        return self.accept_commits

    def committed(
        self, partitions: Iterable[Partition], timeout: float
    ) -> dict[Partition, Position]:
        return {p: self.group_positions[p] for p in partitions if p in self.group_positions}

    def high_watermarks(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        return {p: self.highs[p] for p in partitions if p in self.highs}

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """A DeadLetterProducer whose broker acknowledges when the test says so.

    ``poll`` advances the clock by its timeout, as a real poll blocks that long when
    nothing arrives: the loop's bounded waits then end on the fake clock.
    """

    topic = "dead.letters"

    def __init__(self, clock: FakeClock, *, ack: str | None = "ok") -> None:
        self.clock = clock
        self.ack = ack  # "ok", an error name, or None: no answer yet
        self.sent: list[tuple[bytes | None, bytes | None, list[Any]]] = []
        self._waiting: list[Acknowledgement] = []
        self._answer_in: int | None = None

    def answer_after(self, polls: int) -> None:
        """The broker answers "ok" on the ``polls``-th poll from now."""
        self.ack = None
        self._answer_in = polls

    def send(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        on_done: Acknowledgement,
    ) -> None:
        self.sent.append((key, value, list(headers)))
        self._waiting.append(on_done)

    def poll(self, timeout: float = 0.0) -> int:
        self.clock.advance(timeout)
        if self._answer_in is not None:
            self._answer_in -= 1
            if self._answer_in <= 0:
                self.ack, self._answer_in = "ok", None
        if self.ack is None:
            return 0
        waiting, self._waiting = self._waiting, []
        for on_done in waiting:
            on_done(None if self.ack == "ok" else self.ack)
        return len(waiting)

    def flush(self, timeout: float) -> int:
        self.poll(0)
        return len(self._waiting)

    def topic_exists(self, timeout: float = 5.0) -> bool:
        return True

    @property
    def unanswered(self) -> int:
        return len(self._waiting)


class FakeDispatcher:
    """Records what the loop hands to the asyncio side."""

    def __init__(self) -> None:
        self.submitted: list[Delivery] = []
        self.forgotten: list[set[Partition]] = []

    def submit(self, deliveries: list[Delivery]) -> None:
        self.submitted.extend(deliveries)

    def forget(self, partitions: set[Partition]) -> None:
        self.forgotten.append(partitions)


class ImmediateLoop:
    """Stands in for the asyncio loop: ``call_soon_threadsafe`` runs the call at once."""

    def call_soon_threadsafe(self, callback: Callable[..., object], *args: object) -> None:
        callback(*args)


def record(topic: str, partition: int, offset: int, value: bytes = b"{}") -> SourceRecord:
    return SourceRecord(topic, partition, offset, value, key=f"key-{offset}".encode())
