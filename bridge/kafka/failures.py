"""Where confluent-kafka's exceptions stop: librdkafka's errors as the bridge's error tree.

Every public function and method of ``bridge/kafka`` that calls librdkafka either
handles ``KafkaException`` itself (a refused commit is ``False``, a refused letter
is reported by name) or is wrapped in :func:`translates`, which turns one that
escapes into :class:`~bridge.errors.KafkaCallFailed`. Code outside this package
therefore never names a confluent-kafka exception (``tests/test_error_tree.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from confluent_kafka import KafkaError, KafkaException

from bridge.errors import KafkaCallFailed

P = ParamSpec("P")
R = TypeVar("R")


def error_name(exc: KafkaException) -> str:
    """librdkafka's name for the error ``exc`` carries (``MSG_SIZE_TOO_LARGE`` ...)."""
    error = exc.args[0] if exc.args else None
    return error.name() if isinstance(error, KafkaError) else "kafka"


def call_failed(call: str, error: KafkaError) -> KafkaCallFailed:
    """``error`` as the bridge's exception, keeping what decides (fatal, retriable)."""
    return KafkaCallFailed(call, error.name(), fatal=error.fatal(), retriable=error.retriable())


def translates(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, raising :class:`~bridge.errors.KafkaCallFailed` where librdkafka raised."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError):
                raise call_failed(fn.__qualname__, error) from exc
            raise KafkaCallFailed(fn.__qualname__, "kafka") from exc

    return wrapper
