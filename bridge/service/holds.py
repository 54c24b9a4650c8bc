"""Partitions held back by a Schema Registry outage: hold, back off, release.

A registry outage says nothing about the record, so the consumer loop pauses the
partition, seeks back to the record and fetches it again after a backoff that
doubles with each failure in a row (up to a cap). Pure, with an injected clock,
so the backoff is tested without a broker or a registry; the loop does the
pausing and seeking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bridge.records import Partition


class PartitionHolds:
    """Which partitions wait for the registry, and until when."""

    def __init__(
        self, backoff: tuple[float, float], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._first, self._cap = backoff
        self._clock = clock
        self._until: dict[Partition, float] = {}
        self._failures: dict[Partition, int] = {}

    def hold(self, partition: Partition) -> bool:
        """Hold ``partition`` for the next backoff; True on the first failure in a row
        (the loop logs only that one: an outage repeats the failure every backoff)."""
        failures = self._failures.get(partition, 0) + 1
        self._failures[partition] = failures
        self._until[partition] = self._clock() + min(self._cap, self._first * 2 ** (failures - 1))
        return failures == 1

    def succeeded(self, partition: Partition) -> None:
        """A record of ``partition`` was prepared: the next failure starts the backoff anew."""
        self._failures.pop(partition, None)

    def due(self) -> list[Partition]:
        """The partitions whose backoff has passed, no longer held from now on."""
        now = self._clock()
        released = [partition for partition, until in self._until.items() if until <= now]
        for partition in released:
            del self._until[partition]
        return released

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Revoked or lost: the next owner fetches the record again anyway."""
        for partition in partitions:
            self._until.pop(partition, None)
            self._failures.pop(partition, None)

    def __contains__(self, partition: object) -> bool:
        return partition in self._until
