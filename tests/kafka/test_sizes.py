"""The producer's message.max.bytes stays at or below its topics' limits (pure)."""

from __future__ import annotations

import pytest

from bridge.config.model import KafkaSettings
from bridge.kafka.config import producer_config
from bridge.kafka.sizes import (
    FIXED_OVERHEAD,
    HEADER_OVERHEAD,
    LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES,
    producer_message_max_bytes,
    record_budget,
    record_size,
    sized_producer_config,
)


@pytest.mark.parametrize(
    ("configured", "topics", "expected", "warned"),
    [
        (None, [], LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES, False),  # limits unknown
        (50_000, [], 50_000, False),
        (None, [1_048_588], 1_048_588, False),  # the broker's default
        (None, [10_000, 1_048_588], 10_000, False),  # the smallest topic wins
        (5_000, [10_000], 5_000, False),  # a smaller user value is kept
        ("5000", [10_000], 5_000, False),
        (2_000_000, [10_000], 10_000, True),  # a larger one is lowered, with a warning
        (None, [10], 1_000, False),  # librdkafka takes nothing below 1000
    ],
)
def test_producer_limit_never_exceeds_the_topics(
    configured: int | str | None, topics: list[int], expected: int, warned: bool
) -> None:
    limit, warning = producer_message_max_bytes(configured, topics)
    assert limit == expected
    assert (warning is not None) == warned
    if warning is not None:
        assert "kafka.config.message.max.bytes" in warning


@pytest.mark.parametrize("limit", [1_000, 10_000, 1_000_000, 1_048_588, 100_000_000])
def test_the_budget_leaves_the_documented_margin(limit: int) -> None:
    budget = record_budget(limit)
    assert budget == limit - FIXED_OVERHEAD - limit // 128
    assert limit - budget >= FIXED_OVERHEAD + limit / 255  # lz4's worst-case growth


def test_record_size_counts_each_header_with_its_framing() -> None:
    headers = [("a", b"xy"), ("bc", None)]
    assert record_size(b"k", b"value", headers) == 1 + 5 + (1 + 2) + (2 + 0) + 2 * HEADER_OVERHEAD
    assert record_size(None, None, []) == 0


def test_sized_config_sets_message_max_bytes_and_reports_the_lowering() -> None:
    kafka = KafkaSettings(config={"message.max.bytes": 5_000_000})
    sized, limit = sized_producer_config(producer_config(kafka), [20_000, 30_000])
    assert sized.settings["message.max.bytes"] == 20_000
    assert limit == 20_000
    assert len(sized.warnings) == 1
    kept, limit = sized_producer_config(producer_config(KafkaSettings()), [])
    assert kept.settings["message.max.bytes"] == LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES
    assert limit == LIBRDKAFKA_DEFAULT_MESSAGE_MAX_BYTES
    assert kept.warnings == ()
