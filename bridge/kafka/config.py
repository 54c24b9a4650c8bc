"""librdkafka settings for the bridge's consumer and dead-letter producer.

The user's ``kafka.config`` is passed through (``security.protocol``, ``sasl.*``,
``ssl.*`` ...), but the keys the delivery guarantees rest on are the bridge's:
auto-commit off (an offset is committed only when its record is finished),
the group id of the file, an idempotent producer with ``acks=all``. A user value
for one of those would silently break at-least-once delivery, so it is dropped
with a warning instead of winning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from bridge.config.model import KafkaSettings

ConfigValue = str | int | float | bool

# The consumer keys the offset tracker relies on: the bridge commits explicitly.
_CONSUMER_OWNED: Final[Mapping[str, ConfigValue]] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
}
# Spec: a group with no committed offsets starts from the earliest record unless
# the user's pass-through says otherwise; cooperative-sticky keeps unaffected
# partitions working during a rebalance.
_CONSUMER_DEFAULTS: Final[Mapping[str, ConfigValue]] = {
    "auto.offset.reset": "earliest",
    "partition.assignment.strategy": "cooperative-sticky",
    "enable.partition.eof": False,
    "session.timeout.ms": 45000,
    "max.poll.interval.ms": 300000,
    # Bounded prefetch: back-pressure pauses partitions, and this caps what
    # librdkafka itself buffers meanwhile (per partition, in KiB). 2 MiB is
    # seconds of traffic at Vibes' rates (a few thousand records of ~500 bytes);
    # 16 MiB let six busy partitions hold up to 96 MiB (issue 16, memory under load).
    "queued.max.messages.kbytes": 2048,
}
# The dead-letter producer: a record counts as finished only when the broker
# acknowledged its dead letter, so no acknowledgement may be lost or doubled.
_PRODUCER_OWNED: Final[Mapping[str, ConfigValue]] = {
    "enable.idempotence": True,
    "acks": "all",
}
_PRODUCER_DEFAULTS: Final[Mapping[str, ConfigValue]] = {
    "linger.ms": 5,
    "compression.type": "lz4",
}
# librdkafka's consumer and producer take the same connection keys; these are
# meaningful to one side only and librdkafka warns when given to the other.
_CONSUMER_ONLY_PREFIXES: Final = (
    "auto.offset.reset",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "max.poll.interval.ms",
    "heartbeat.interval.ms",
    "fetch.",
    "queued.",
    "isolation.level",
    "group.",
    "enable.partition.eof",
    "check.crcs",
)
_PRODUCER_ONLY_PREFIXES: Final = (
    "linger.ms",
    "batch.",
    "compression.",
    "queue.buffering.",
    "message.timeout.ms",
    "delivery.timeout.ms",
    "retries",
    "retry.backoff",
    "max.in.flight",
)


@dataclass(frozen=True, slots=True)
class KafkaClientConfig:
    """The settings for one client, and the warnings about user keys the bridge overrode."""

    settings: dict[str, ConfigValue]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def consumer_config(kafka: KafkaSettings, *, group_id: str | None = None) -> KafkaClientConfig:
    """Consumer settings; ``group_id`` overrides the file's (replay uses a group of its own)."""
    owned = {**_CONSUMER_OWNED, "group.id": group_id or kafka.group_id}
    passed = _without_prefixes(kafka.config, _PRODUCER_ONLY_PREFIXES)
    return _merge(kafka, passed, _CONSUMER_DEFAULTS, owned, role="consumer")


# With delivery receipts the dead-letter producer writes a record per accepted event:
# batches of 50 ms instead of 5 keep its produce requests (and their CPU) few. A
# receipt only holds back its record's commit, which runs once a second anyway.
RECEIPTS_LINGER_MS: Final = 50


def producer_config(kafka: KafkaSettings, *, receipts: bool = False) -> KafkaClientConfig:
    """Dead-letter (and receipt) producer settings: idempotent, ``acks=all``; a longer
    default ``linger.ms`` with ``receipts`` (the user's value wins)."""
    passed = _without_prefixes(kafka.config, _CONSUMER_ONLY_PREFIXES)
    passed.pop("group.id", None)
    defaults = {**_PRODUCER_DEFAULTS, "linger.ms": RECEIPTS_LINGER_MS} if receipts else None
    return _merge(kafka, passed, defaults or _PRODUCER_DEFAULTS, _PRODUCER_OWNED, role="producer")


def _merge(
    kafka: KafkaSettings,
    passed: dict[str, ConfigValue],
    defaults: Mapping[str, ConfigValue],
    owned: Mapping[str, ConfigValue],
    *,
    role: str,
) -> KafkaClientConfig:
    warnings = [
        f"kafka.config.{key} is set by the bridge for its {role} and was ignored"
        for key in owned
        if key in passed and passed[key] != owned[key]
    ]
    settings: dict[str, ConfigValue] = {
        "bootstrap.servers": kafka.bootstrap_servers,
        "client.id": "vibes-bridge",
        **defaults,
        **passed,
        **owned,
    }
    return KafkaClientConfig(settings, tuple(warnings))


def _without_prefixes(
    config: Mapping[str, ConfigValue], prefixes: tuple[str, ...]
) -> dict[str, ConfigValue]:
    return {key: value for key, value in config.items() if not key.startswith(prefixes)}


def callback_producer_config(kafka: KafkaSettings, deadline_seconds: float) -> KafkaClientConfig:
    """The callback receiver's producer: the dead-letter settings, and a message timeout
    equal to the answer deadline.

    A callback answered 503 is sent again by Vibes; with the timeout equal to the
    deadline, librdkafka gives up on the record at the moment the receiver does,
    so a broker outage does not leave a queued copy that would land later beside
    Vibes' retry. (A record already on the wire when the deadline passes may
    still be written: the topic is at-least-once, deduplicate by the callback's id.)
    """
    base = producer_config(kafka)
    settings = {
        **base.settings,
        "message.timeout.ms": max(1, round(deadline_seconds * 1000)),
        # The answer waits for the acknowledgement: no batching delay.
        "linger.ms": 0,
    }
    return KafkaClientConfig(settings, base.warnings)
