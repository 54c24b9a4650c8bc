"""Start-up: learn the record size limits of the topics the service writes to, and check them.

Runs once before anything is consumed (docs/running.md, "Size bounds"). The
producers' ``message.max.bytes`` is kept at or below what their topics accept,
dead letters are cut to fit (``dead_letters.fit_letter``), receipts too
(``receipts.fit_receipt``: they share the dead-letter producer, so its limit is
the smaller of the two topics'), and the callback receiver refuses bodies the
topics could not store.

When even a cut dead letter (the bridge's own headers, no value) cannot fit,
the service refuses to start with a configuration error (exit 2) naming the
setting. Starting anyway would only move the failure to the first record that
needs a dead letter, which would then wait for ever; a restart changes nothing,
and the other configuration problems are reported the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bridge.dead_letters import largest_own_headers
from bridge.errors import ConfigError, Problem
from bridge.kafka.config import KafkaClientConfig, callback_producer_config, producer_config
from bridge.kafka.sizes import record_budget, sized_producer_config
from bridge.kafka.topic_limits import read_topic_limits
from bridge.loading import LoadedBridge
from bridge.receipts import largest_fixed_receipt
from bridge.service.callback_receiver import largest_callback_headers

# The smallest callbacks.max_body_bytes the file accepts: a real callback needs about this.
MIN_CALLBACK_BODY_BYTES: Final = 1024


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """The producers' settings and what each may write (bytes)."""

    dead_letter_config: KafkaClientConfig
    dead_letter_record_bytes: int
    callback_config: KafkaClientConfig | None = None
    callback_body_bytes: int | None = None  # storable; the receiver clamps its limit to it


def learn_size_limits(loaded: LoadedBridge) -> SizeLimits:
    """Ask the broker for the topics' limits and size the producers (blocking: a thread).

    Raises :class:`ConfigError` when a dead letter cannot fit at all, or no
    callback body of :data:`MIN_CALLBACK_BODY_BYTES` could be stored.
    """
    settings = loaded.settings
    base = producer_config(settings.kafka, receipts=settings.receipts is not None)
    callbacks = settings.callbacks if loaded.callback_token is not None else None
    receipts = settings.receipts
    wanted = [
        settings.dead_letter.topic,
        *([callbacks.topic] if callbacks else []),
        *([receipts.topic] if receipts else []),
    ]
    limits = read_topic_limits(base.settings, wanted)
    dead_letter_limits = _known(limits, settings.dead_letter.topic)
    receipt_limits = _known(limits, receipts.topic) if receipts else []
    dead_letter_config, record_bytes = sized_producer_config(base, dead_letter_limits)
    _check_dead_letters_fit(loaded, record_bytes)
    if receipts is not None:  # one producer writes both: the smaller limit holds for both
        dead_letter_config, record_bytes = sized_producer_config(
            base, [*dead_letter_limits, *receipt_limits]
        )
        _check_receipts_fit(loaded, record_bytes)
    if callbacks is None:
        return SizeLimits(dead_letter_config, record_bytes)
    callback_base = callback_producer_config(settings.kafka, callbacks.store_timeout_seconds)
    callback_config, callback_bytes = sized_producer_config(
        callback_base, [*dead_letter_limits, *_known(limits, callbacks.topic)]
    )
    body_bytes = record_budget(callback_bytes) - largest_callback_headers()
    if body_bytes < MIN_CALLBACK_BODY_BYTES:
        raise _problem(
            loaded,
            f"callbacks: the topics {callbacks.topic} and {settings.dead_letter.topic} accept "
            f"records of at most {callback_bytes} bytes (max.message.bytes, or "
            f"kafka.config.message.max.bytes): room for a {max(0, body_bytes)}-byte callback "
            f"body, {MIN_CALLBACK_BODY_BYTES} needed; raise the topics' max.message.bytes",
        )
    return SizeLimits(dead_letter_config, record_bytes, callback_config, body_bytes)


def _check_dead_letters_fit(loaded: LoadedBridge, record_bytes: int) -> None:
    """Refuse to start when the bridge's own headers alone would not fit a dead letter."""
    rules = [rule.name for rule in loaded.settings.rules]
    needed = largest_own_headers(loaded.decoders, rules)
    if record_budget(record_bytes) >= needed:
        return
    topic = loaded.settings.dead_letter.topic
    raise _problem(
        loaded,
        f"dead_letter.topic: {topic} accepts records of at most {record_bytes} bytes "
        f"(its max.message.bytes, or kafka.config.message.max.bytes), too small for a dead "
        f"letter's own headers (up to {needed} bytes plus the size margin); raise the topic's "
        "max.message.bytes",
    )


def _check_receipts_fit(loaded: LoadedBridge, record_bytes: int) -> None:
    """Refuse to start when a receipt with an empty event type, or a dead letter's own
    headers (the two share a producer, so the receipts topic's limit binds letters too),
    would not fit."""
    settings = loaded.settings
    assert settings.receipts is not None
    rules = [rule.name for rule in settings.rules]
    keys = [settings.vibes.company_key, *(r.company_key for r in settings.rules if r.company_key)]
    needed = max(
        largest_fixed_receipt(loaded.decoders, rules, keys),
        largest_own_headers(loaded.decoders, rules),
    )
    if record_budget(record_bytes) >= needed:
        return
    raise _problem(
        loaded,
        f"receipts.topic: {settings.receipts.topic} (with {settings.dead_letter.topic}, which "
        f"shares its producer) accepts records of at most {record_bytes} bytes "
        "(max.message.bytes, or kafka.config.message.max.bytes), too small for receipts and "
        f"dead letters (up to {needed} bytes plus the size margin); raise its max.message.bytes",
    )


def _known(limits: dict[str, int], topic: str) -> list[int]:
    return [limits[topic]] if topic in limits else []


def _problem(loaded: LoadedBridge, message: str) -> ConfigError:
    return ConfigError([Problem(str(loaded.path), None, message)])
