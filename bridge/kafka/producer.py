"""The dead-letter producer: idempotent, ``acks=all``, acknowledgements as callbacks.

A record whose dead letter is not acknowledged by the broker is not finished, so
its offset is never committed: the producer reports each letter's fate to the
caller, and the caller decides (retry, stall, alert). Acknowledgements are
delivered from :meth:`poll`, on whichever thread calls it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from bridge.kafka.config import ConfigValue

log = logging.getLogger(__name__)

# Called with None once the broker acknowledged, or with librdkafka's error name.
Acknowledgement = Callable[[str | None], None]
_QUEUE_FULL_WAIT: Final = 0.1


class DeadLetterProducer:
    """Writes dead letters to one topic and reports each one's acknowledgement."""

    def __init__(self, settings: Mapping[str, ConfigValue], topic: str) -> None:
        self.topic = topic
        self._settings = dict(settings)
        self._producer = Producer(self._settings, logger=log)

    def send(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        on_done: Acknowledgement,
    ) -> None:
        """Queue one dead letter; ``on_done`` runs from a later :meth:`poll` or :meth:`flush`."""

        def report(error: KafkaError | None, _message: Message) -> None:
            on_done(None if error is None else error.name())

        wire_headers: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, headers=wire_headers, on_delivery=report
                )
                return
            except BufferError:  # the local queue is full: let acknowledgements drain it
                self._producer.poll(_QUEUE_FULL_WAIT)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve acknowledgements; the number served."""
        return self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        """Wait for every queued letter's acknowledgement; the number still outstanding."""
        return self._producer.flush(timeout)

    def topic_exists(self, timeout: float = 5.0) -> bool:
        """Whether the broker knows the dead-letter topic (readiness checks this once)."""
        admin = AdminClient(
            {key: value for key, value in self._settings.items() if not _producer_only(key)}
        )
        try:
            metadata = admin.list_topics(topic=self.topic, timeout=timeout)
        except KafkaException:
            return False
        topic = metadata.topics.get(self.topic)
        return topic is not None and topic.error is None


def _producer_only(key: str) -> bool:
    return key in ("enable.idempotence", "acks", "linger.ms", "compression.type")
