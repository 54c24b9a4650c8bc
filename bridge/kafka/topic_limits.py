"""Read the record size limit of the topics the bridge writes to, once at start-up.

A topic's ``max.message.bytes`` is its own setting or, unset, the broker's
``message.max.bytes``; ``describe_configs`` answers the effective value. A topic
that does not exist yet (created later by an operator, or by auto-creation on
the first write) gets the broker's default, which is what it will be created with.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# The package re-exports these without __all__, which mypy strict does not accept.
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._resource import ResourceType

from bridge.kafka.client_logs import client_logging
from bridge.kafka.config import ConfigValue
from bridge.kafka.failures import error_name, translates

log = logging.getLogger(__name__)

_TOPIC_LIMIT: Final = "max.message.bytes"
_BROKER_LIMIT: Final = "message.max.bytes"
_ADMIN_KEYS_TO_DROP: Final = (
    "enable.idempotence",
    "acks",
    "linger.ms",
    "compression.type",
    "message.max.bytes",
    "message.timeout.ms",
)


@translates
def read_topic_limits(
    settings: Mapping[str, ConfigValue], topics: Sequence[str], timeout: float = 10.0
) -> dict[str, int]:
    """Each topic's effective ``max.message.bytes``; a topic whose limit could not be
    learned (broker unreachable, no permission to describe) is left out, with a warning."""
    admin = AdminClient(
        {k: v for k, v in settings.items() if k not in _ADMIN_KEYS_TO_DROP}, **client_logging()
    )
    limits: dict[str, int] = {}
    missing: list[str] = []
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in dict.fromkeys(topics)]
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        try:
            limits[resource.name] = int(future.result(timeout=timeout)[_TOPIC_LIMIT].value)
        except KafkaException as exc:
            if error_name(exc) == "UNKNOWN_TOPIC_OR_PART":
                missing.append(resource.name)
            else:
                _unknown(resource.name, error_name(exc))
        except TimeoutError:
            _unknown(resource.name, "no answer in time")
        except (KeyError, ValueError, TypeError):
            _unknown(resource.name, "no max.message.bytes in the answer")
    if missing:
        default = _broker_default(admin, timeout)
        for topic in missing:
            if default is not None:
                limits[topic] = default
            else:
                _unknown(topic, "the broker's default could not be read")
    return limits


def _broker_default(admin: AdminClient, timeout: float) -> int | None:
    try:
        metadata = admin.list_topics(timeout=timeout)
        broker = ConfigResource(ResourceType.BROKER, str(metadata.controller_id))
        (future,) = admin.describe_configs([broker], request_timeout=timeout).values()
        return int(future.result(timeout=timeout)[_BROKER_LIMIT].value)
    except (KafkaException, TimeoutError, KeyError, ValueError, TypeError):
        return None


def _unknown(topic: str, why: str) -> None:
    log.warning(
        "the topic's record size limit could not be read; assuming the producer's",
        extra={"topic": topic, "why": why},
    )
