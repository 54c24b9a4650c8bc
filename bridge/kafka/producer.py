"""The dead-letter producer: idempotent, ``acks=all``, acknowledgements as callbacks.

A record whose dead letter (or delivery receipt) is not acknowledged by the broker
is not finished, so its offset is never committed: the producer reports each
record's fate to the caller, and the caller decides (retry, stall, alert). Dead
letters and receipts share the one producer, so one ``poll`` serves both. Acknowledgements are
delivered from :meth:`poll`, on whichever thread calls it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from bridge.errors import KafkaFailure
from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.failures import error_name, translates

log = logging.getLogger(__name__)

# Called with None once the broker acknowledged, or with librdkafka's error name.
Acknowledgement = Callable[[str | None], None]
_QUEUE_FULL_WAIT: Final = 0.1
_POLL_SECONDS: Final = 0.1


class DeadLetterProducer:
    """Writes dead letters to one topic (receipts to another) and reports each one's
    acknowledgement.

    :meth:`send` never blocks and never raises: it is called from the asyncio
    loop as well as the consumer thread. A letter librdkafka's local queue has no
    room for waits in a backlog that :meth:`poll` (the consumer thread) retries
    after serving acknowledgements; the backlog is bounded by the records in
    flight, since every letter is one unfinished record. A letter librdkafka
    refuses outright (too large, an unknown topic ...) is reported to its
    ``on_done`` with the error's name from the next :meth:`poll`, like a refusal
    by the broker.
    """

    @translates
    def __init__(self, settings: Mapping[str, ConfigValue], topic: str) -> None:
        self.topic = topic
        self._settings = dict(settings)
        self._producer = Producer(self._settings, **client_logging())
        self._lock = threading.Lock()
        self._backlog: deque[_Letter] = deque()
        self._refused: list[tuple[Acknowledgement, str]] = []

    def send(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        on_done: Acknowledgement,
        topic: str | None = None,
    ) -> None:
        """Queue one dead letter (or a record for ``topic``); ``on_done`` runs from a later
        :meth:`poll` or :meth:`flush`."""
        letter = _Letter(key, value, list(headers), on_done, topic or self.topic)
        with self._lock:
            if self._backlog or not self._offer(letter):  # keep the backlog's order
                self._backlog.append(letter)

    @translates
    def poll(self, timeout: float = 0.0) -> int:
        """Serve acknowledgements and refusals, then retry the backlog; the number served."""
        served = self._producer.poll(timeout)
        with self._lock:
            while self._backlog and self._offer(self._backlog[0]):
                self._backlog.popleft()
            refused, self._refused = self._refused, []
        for on_done, error in refused:
            on_done(error)
        return served + len(refused)

    @translates
    def flush(self, timeout: float) -> int:
        """Wait for every queued letter's acknowledgement; the number still outstanding."""
        deadline = time.monotonic() + timeout
        self.poll()
        while self._backlog and time.monotonic() < deadline:
            self._producer.flush(min(_QUEUE_FULL_WAIT, max(0.0, deadline - time.monotonic())))
            self.poll()
        outstanding = self._producer.flush(max(0.0, deadline - time.monotonic()))
        self.poll()
        return outstanding + len(self._backlog)

    def _offer(self, letter: _Letter) -> bool:
        """Hand ``letter`` to librdkafka; False when its local queue is full (under the lock)."""
        on_done = letter.on_done

        def report(error: KafkaError | None, _message: Message) -> None:
            on_done(None if error is None else error.name())

        wire_headers: list[tuple[str, str | bytes | None]] = list(letter.headers)
        try:
            self._producer.produce(
                letter.topic,
                value=letter.value,
                key=letter.key,
                headers=wire_headers,
                on_delivery=report,
            )
        except BufferError:
            return False
        except KafkaException as exc:  # MSG_SIZE_TOO_LARGE and the like: never out of send
            self._refused.append((on_done, error_name(exc)))
        return True

    @translates
    def topic_exists(self, timeout: float = 5.0, topic: str | None = None) -> bool:
        """Whether the broker knows the dead-letter topic, or ``topic`` (readiness checks)."""
        admin = AdminClient(
            {key: value for key, value in self._settings.items() if not _producer_only(key)},
            **client_logging(),
        )
        try:
            # All topics, not list_topics(topic=...): asking for one topic by name
            # makes a broker with auto-creation on create it, hiding the problem.
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException:
            return False
        found = metadata.topics.get(topic or self.topic)
        return found is not None and found.error is None


def _producer_only(key: str) -> bool:
    return key in ("enable.idempotence", "acks", "linger.ms", "compression.type")


class AcknowledgedProducer:
    """Produces to any topic and resolves an asyncio future with each acknowledgement.

    The callback receiver answers Vibes only after the broker acknowledged, inside
    Vibes' two seconds, on the asyncio loop; librdkafka reports acknowledgements
    from ``poll``, so a thread of its own polls and hands each result to the loop.
    """

    @translates
    def __init__(
        self, settings: Mapping[str, ConfigValue], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._producer = Producer(dict(settings), **client_logging())
        self._loop = loop
        self._stopped = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="callback-producer", daemon=True)
        self._poller.start()

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes | None]],
    ) -> asyncio.Future[None]:
        """Queue one record; the future ends when the broker acknowledged it, or
        with :class:`ProduceFailed` naming librdkafka's error."""
        future: asyncio.Future[None] = self._loop.create_future()

        def report(error: KafkaError | None, _message: Message) -> None:
            self._loop.call_soon_threadsafe(
                _settle, future, None if error is None else error.name()
            )

        wire_headers: list[tuple[str, str | bytes | None]] = list(headers)
        try:
            self._producer.produce(
                topic, value=value, key=key, headers=wire_headers, on_delivery=report
            )
        except BufferError:  # the local queue is full: the broker is far behind
            future.set_exception(ProduceFailed("local queue full"))
        except KafkaException as exc:
            future.set_exception(ProduceFailed(error_name(exc)))
        return future

    @translates
    def close(self, timeout: float) -> int:
        """Wait for what is queued, stop polling; the number of records still unacknowledged."""
        remaining = self._producer.flush(timeout)
        self._stopped.set()
        self._poller.join(timeout=1.0)
        return remaining

    def _poll(self) -> None:
        while not self._stopped.is_set():
            self._producer.poll(_POLL_SECONDS)


class _Letter(NamedTuple):
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    on_done: Acknowledgement
    topic: str


class ProduceFailed(KafkaFailure):
    """The broker did not take a record; the message is librdkafka's error name."""


def _settle(future: asyncio.Future[None], error: str | None) -> None:
    if future.done():  # the receiver gave up waiting (its deadline passed)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(ProduceFailed(error))
