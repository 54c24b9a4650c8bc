"""How many bytes of key, value and headers fit in one Kafka record under a size limit (pure).

Two limits apply to every record the bridge writes: librdkafka's
``message.max.bytes`` (checked in ``produce``, default 1,000,000) and the topic's
``max.message.bytes`` (checked by the broker against the whole record *batch*,
after compression; the broker's default 1,048,588). The bridge keeps the first at
or below the second (:func:`producer_message_max_bytes`) and cuts what it writes
to a :func:`record_budget` below the smaller one. The margin is documented in
docs/running.md ("Size bounds"):

- a fixed 512 bytes: the record batch header (61 bytes), the record's own framing
  (length, attributes, timestamp and offset deltas, key and value lengths, header
  count: at most 30 bytes) and lz4's frame header, with room to spare;
- ``limit // 128`` (0.8 %): lz4's worst-case growth of incompressible data
  (1/255 of the input, plus 4 bytes per 64 KiB block), measured against the real
  broker by tests/kafka/test_sizes_broker.py;
- :data:`HEADER_OVERHEAD` per header, counted by :func:`record_size`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from bridge.kafka.config import ConfigValue, KafkaClientConfig

LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES: Final = 1_000_000
# librdkafka refuses a message.max.bytes outside this range.
LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES: Final = 1_000
LIBRDKAFKA_MAX_MESSAGE_MAX_BYTES: Final = 1_000_000_000
FIXED_OVERHEAD: Final = 512
COMPRESSION_SHARE: Final = 128
# Two varints (name length, value length) of at most 5 bytes each.
HEADER_OVERHEAD: Final = 10

WireHeaders = Sequence[tuple[str, bytes | None]]


def record_size(key: bytes | None, value: bytes | None, headers: WireHeaders) -> int:
    """The bytes a record's payload counts against :func:`record_budget`."""
    return len(key or b"") + len(value or b"") + headers_size(headers)


def headers_size(headers: WireHeaders) -> int:
    return sum(
        len(name.encode("utf-8")) + len(value or b"") + HEADER_OVERHEAD for name, value in headers
    )


def record_budget(limit: int) -> int:
    """Payload bytes (see :func:`record_size`) that fit in one record under ``limit``;
    negative when even an empty record would not."""
    return limit - FIXED_OVERHEAD - limit // COMPRESSION_SHARE


def producer_message_max_bytes(
    configured: ConfigValue | None, topic_limits: Sequence[int]
) -> tuple[int, str | None]:
    """The producer's ``message.max.bytes`` and a warning when the user's value was lowered.

    Never above the smallest topic limit (a batch larger than the topic takes is
    refused whole by the broker, after librdkafka accepted each record); a user's
    smaller value is kept (it only makes letters shorter). Without a known topic
    limit, the user's value or librdkafka's default stands.
    """
    user = _as_int(configured)
    smallest = min(topic_limits) if topic_limits else None
    if smallest is None:
        return (user if user is not None else LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES), None
    target = _within_librdkafka_range(smallest)
    if user is None or user <= target:
        return (user if user is not None else target), None
    warning = (
        f"kafka.config.message.max.bytes ({user}) is above what the topics the bridge writes to "
        f"accept ({smallest}); the producer uses {target}"
    )
    return target, warning


def sized_producer_config(
    config: KafkaClientConfig, topic_limits: Sequence[int]
) -> tuple[KafkaClientConfig, int]:
    """``config`` with ``message.max.bytes`` consistent with ``topic_limits``, and the
    limit every record of this producer must meet (see :func:`effective_limit`)."""
    producer_limit, warning = producer_message_max_bytes(
        config.settings.get("message.max.bytes"), topic_limits
    )
    settings = {**config.settings, "message.max.bytes": producer_limit}
    warnings = config.warnings if warning is None else (*config.warnings, warning)
    return KafkaClientConfig(settings, warnings), effective_limit(producer_limit, topic_limits)


def effective_limit(producer_limit: int, topic_limits: Sequence[int]) -> int:
    """The limit a record must meet: the smaller of the producer's and the topics'."""
    return min((producer_limit, *topic_limits))


def _within_librdkafka_range(value: int) -> int:
    return max(LIBRDKAFKA_MIN_MESSAGE_MAX_BYTES, min(LIBRDKAFKA_MAX_MESSAGE_MAX_BYTES, value))


def _as_int(value: ConfigValue | None) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except ValueError:  # librdkafka itself refuses it when the client is built
        return None
