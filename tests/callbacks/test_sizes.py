"""The callback receiver never takes a body its topics could not store.

``vibes-bridge run`` learns the callbacks and dead-letter topics' limits at start;
``callbacks.max_body_bytes`` above what they store is lowered (with a warning) so
that such a body is answered 413 at once, not 503 for ever; topics too small for
any callback are refused at start.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from bridge.kafka.sizes import record_budget
from bridge.service.callback_receiver import largest_callback_headers
from tests.callbacks.support import receiver_url, with_callbacks
from tests.support.bridge_service import run_to_exit
from tests.support.kafka import end_offset, read_all
from tests.support.service import ServiceFactory

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

TOPIC_LIMIT = 20_000


def callback_of_size(size: int, event_id: str) -> bytes:
    """A valid event_processed callback padded to exactly ``size`` bytes."""
    document: dict[str, Any] = {
        "event_id": f"cb-{event_id}",
        "callback_type": "event_processed",
        "event_date": "2026-01-10T10:00:00Z",
        "event_processed": {
            "event_id": event_id,
            "event_type": "order_shipped",
            "event_data": {"pad": ""},
            "action": {"type": "routing", "status": "delivered"},
        },
    }
    padding = size - len(orjson.dumps(document))
    document["event_processed"]["event_data"]["pad"] = "x" * padding
    body = orjson.dumps(document)
    assert len(body) == size
    return body


def test_a_body_larger_than_storable_is_refused_413_and_a_storable_one_stored(
    service: ServiceFactory,
) -> None:
    setup = service(partitions=1)
    callbacks_topic = setup.new_topic(1, {"max.message.bytes": str(TOPIC_LIMIT)})
    bridge = setup.start(with_callbacks(setup.config(), callbacks_topic))
    url = receiver_url(bridge)
    storable = record_budget(TOPIC_LIMIT) - largest_callback_headers()
    answers = {}
    for size in (storable, storable + 1, TOPIC_LIMIT, 40_000, 70_000):
        answers[size] = httpx.post(url, content=callback_of_size(size, f"e{size}")).status_code
    not_a_callback = httpx.post(url, content=b"{" * (storable + 1)).status_code
    assert answers == {
        storable: 200,
        storable + 1: 413,
        TOPIC_LIMIT: 413,
        40_000: 413,
        70_000: 413,
    }
    assert not_a_callback == 413
    [stored] = read_all(setup.bootstrap, callbacks_topic, 1)
    assert len(stored.value()) == storable
    assert end_offset(setup.bootstrap, callbacks_topic) == 1
    warnings = [
        line for line in bridge.log_lines() if "callbacks.max_body_bytes" in line.get("message", "")
    ]
    assert len(warnings) == 1
    assert warnings[0]["storable_bytes"] == storable
    assert bridge.metric("vibes_bridge_callback_requests_total", answer="too_large") == 5
    assert bridge.stop() == 0


def test_callback_topics_too_small_for_any_callback_are_refused_at_start(
    service: ServiceFactory,
) -> None:
    setup = service(partitions=1)
    callbacks_topic = setup.new_topic(1, {"max.message.bytes": "4000"})
    config = with_callbacks(setup.config(), callbacks_topic)
    result = run_to_exit(config)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "callbacks:" in line]
    assert len(lines) == 1
    assert callbacks_topic in lines[0]
    assert "max.message.bytes" in lines[0]
