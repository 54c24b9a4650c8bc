"""The bridge's consumer: subscribe with rebalance callbacks, fetch records, commit positions.

A thin wrapper: confluent-kafka's objects stay inside ``bridge/kafka``; the
service sees ``(topic, partition)`` pairs and :class:`SourceRecord` values.
Every call happens on the one thread that owns the consumer (librdkafka runs
the rebalance callbacks inside ``consume``), which is also the thread that
commits: commits and rebalances are serialised by construction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.failures import call_failed, error_name, translates
from bridge.kafka.messages import MalformedMessage, to_source_record
from bridge.records import Partition, Position, SourceRecord

log = logging.getLogger(__name__)

_METADATA_TOO_LARGE: Final = "OFFSET_METADATA_TOO_LARGE"


class RebalanceListener(Protocol):
    """What the service does when the group moves partitions (on the consumer's thread)."""

    def partitions_assigned(self, partitions: list[Partition]) -> None: ...

    def partitions_revoked(self, partitions: list[Partition]) -> None: ...

    def partitions_lost(self, partitions: list[Partition]) -> None: ...


@dataclass(frozen=True, slots=True)
class ConsumerTrouble:
    """A fetch-level error that is not a record: logged and counted, never fatal by itself."""

    code: str
    retriable: bool


class KafkaSource:
    """The subscribed consumer of the bridge's source topics."""

    @translates
    def __init__(
        self,
        settings: Mapping[str, ConfigValue],
        topics: Iterable[str],
        listener: RebalanceListener,
    ) -> None:
        self._listener = listener
        self._consumer = Consumer(dict(settings), **client_logging())
        self._consumer.subscribe(
            list(topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self._closed = False
        self._with_metadata = True

    # librdkafka calls these from inside consume(), on this consumer's thread.
    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._listener.partitions_assigned(_pairs(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._listener.partitions_revoked(_pairs(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._listener.partitions_lost(_pairs(partitions))

    @translates
    def fetch(self, max_records: int, timeout: float) -> list[SourceRecord | ConsumerTrouble]:
        """Up to ``max_records`` records (or fetch errors), waiting at most ``timeout`` seconds."""
        messages = self._consumer.consume(num_messages=max_records, timeout=timeout)
        return [record_or_trouble(message) for message in messages]

    @translates
    def pause(self, partitions: Iterable[Partition]) -> None:
        self._consumer.pause(_topic_partitions(partitions))

    @translates
    def resume(self, partitions: Iterable[Partition]) -> None:
        self._consumer.resume(_topic_partitions(partitions))

    @translates
    def seek(self, partition: Partition, offset: int) -> None:
        """Fetch ``partition`` again from ``offset`` (a registry outage: retry the record)."""
        topic, number = partition
        self._consumer.seek(TopicPartition(topic, number, offset))

    @translates
    def assignment(self) -> list[Partition]:
        return _pairs(self._consumer.assignment())

    def commit(self, positions: Mapping[Partition, Position]) -> bool:
        """Commit ``positions`` (next offset to read, with metadata) synchronously;
        False if the broker refused.

        A refused commit (a rebalance in progress, the member fenced) is not an
        error for the data: the positions are offered again, and at worst the
        next owner redelivers records whose event ids Vibes already has. A broker
        whose ``offset.metadata.max.bytes`` is below the bridge's metadata refuses
        it: from then on this consumer commits offsets alone (one warning), which
        is always safe, only a restart then redoes everything past the position.
        """
        if not positions:
            return True
        try:
            self._consumer.commit(offsets=self._offsets(positions), asynchronous=False)
        except KafkaException as exc:
            if error_name(exc) != _METADATA_TOO_LARGE or not self._with_metadata:
                log.warning("offset commit refused", extra={"kafka_error": error_name(exc)})
                return False
            self._with_metadata = False
            log.warning(
                "the broker refuses the commit metadata (offset.metadata.max.bytes is below "
                "4096); committing offsets alone, so a restart redoes every record past them",
                extra={"kafka_error": error_name(exc)},
            )
            return self.commit(positions)
        return True

    def _offsets(self, positions: Mapping[Partition, Position]) -> list[TopicPartition]:
        """The commit's partitions; without metadata the broker stores an empty text."""
        return [
            TopicPartition(t, p, position.offset, metadata=position.metadata)
            if self._with_metadata and position.metadata
            else TopicPartition(t, p, position.offset)
            for (t, p), position in positions.items()
        ]

    def committed(
        self, partitions: Iterable[Partition], timeout: float
    ) -> dict[Partition, Position]:
        """The group's committed positions and their metadata (one broker round trip);
        partitions without one left out.

        Asked once per assignment: the lag is known before this process commits,
        and the metadata says which records past the position are finished.
        """
        try:
            answer = self._consumer.committed(_topic_partitions(partitions), timeout=timeout)
        except KafkaException:
            return {}
        return {
            (tp.topic, tp.partition): Position(tp.offset, tp.metadata or "")
            for tp in answer
            if tp.offset >= 0
        }

    def high_watermarks(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The end offset of each partition from the client's cache (no broker round trip)."""
        marks: dict[Partition, int] = {}
        for topic, number in partitions:
            try:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, number), cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                marks[(topic, number)] = high
        return marks

    @translates
    def close(self) -> None:
        """Leave the group (runs the revoke callback for what is still assigned)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()


def record_or_trouble(message: Message) -> SourceRecord | ConsumerTrouble:
    """The record a fetched message holds, or the trouble it reports instead.

    A fatal error (the client can no longer be used) is raised as
    :class:`~bridge.errors.KafkaCallFailed`: it ends the run.
    """
    error = message.error()
    if error is not None:
        if error.fatal():
            raise call_failed("fetch", error)
        return ConsumerTrouble(error.name(), error.retriable())
    try:
        return to_source_record(message)
    except MalformedMessage:
        return ConsumerTrouble("malformed_message", False)


def _pairs(partitions: list[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _topic_partitions(partitions: Iterable[Partition]) -> list[TopicPartition]:
    return [TopicPartition(topic, number) for topic, number in partitions]
