"""The receiver in-process against the real broker: what is stored, what is refused, and 503.

Each test runs one receiver on a free port of 127.0.0.1 and talks HTTP to it.
Every topic has one partition, and every scenario ends with a valid "sentinel"
callback: answers come only after the broker acknowledged, so anything a refused
request had produced would sit before the sentinel, and reading up to it proves
nothing else was written.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from bridge.config.model import CallbackSettings, KafkaSettings
from bridge.kafka.config import callback_producer_config
from bridge.kafka.producer import AcknowledgedProducer
from bridge.metrics import BridgeMetrics
from bridge.service.callback_receiver import CallbackReceiver
from tests.support.kafka import read_all

pytestmark = pytest.mark.kafka

TOKEN = "t0ken-0123456789abcdef"
PATH = f"/vibes/callbacks/{TOKEN}"
Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


def callback(event_id: str = "evt-1", reason: str = "person_not_subscribed") -> dict[str, Any]:
    return {
        "event_id": f"cb-{event_id}",
        "callback_type": "event_processed",
        "event_date": "2026-01-10T10:00:00Z",
        "event_processed": {
            "event_id": event_id,
            "event_type": "order_shipped",
            "event_data": {"external_person_id": "p-1"},
            "debug_data": {"rule": "r1", "topic": "shop.orders", "partition": 0, "offset": 41},
            "action": {"type": "routing", "status": "failed", "status_reason": reason},
        },
    }


def run_receiver(
    bootstrap: str, scenario: Scenario, metrics: BridgeMetrics, **settings: Any
) -> None:
    async def main() -> None:
        dead_letter_topic = settings.pop("_dlq")
        event_types = settings.pop("_event_types", frozenset())
        started: list[CallbackReceiver] = settings.pop("_started", [])
        config = CallbackSettings.model_validate(
            {"host": "127.0.0.1", "port": 0, "token": TOKEN, **settings}
        )
        kafka = KafkaSettings(bootstrap_servers=bootstrap)
        producer = AcknowledgedProducer(
            callback_producer_config(kafka, config.store_timeout_seconds).settings,
            asyncio.get_running_loop(),
        )
        receiver = CallbackReceiver(
            config,
            TOKEN,
            producer,
            metrics,
            dead_letter_topic=dead_letter_topic,
            event_types=event_types,
        )
        _host, port = await receiver.start()
        started.append(receiver)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await scenario(client)
        finally:
            await receiver.stop()
            await asyncio.to_thread(producer.close, 5.0)

    asyncio.run(main())


def answers(metrics: BridgeMetrics, answer: str) -> float:
    value = metrics.registry.get_sample_value(
        "vibes_bridge_callback_requests_total", {"answer": answer}
    )
    return value or 0.0


def headers_of(message: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers() or []}


def test_a_valid_callback_is_stored_keyed_with_headers_and_counted(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(1), new_topic(1)
    metrics = BridgeMetrics()
    body = orjson.dumps(callback())

    async def scenario(client: httpx.AsyncClient) -> None:
        # Running, the receiver shows every answer before the first request.
        assert (
            metrics.registry.get_sample_value(
                "vibes_bridge_callback_requests_total", {"answer": "unavailable"}
            )
            == 0
        )
        answer = await client.post(PATH, content=body)
        assert answer.status_code == 200

    run_receiver(
        kafka_bootstrap,
        scenario,
        metrics,
        topic=topic,
        _dlq=dlq,
        _event_types=frozenset({"order_shipped"}),  # the rules' declared types
        allow_from=["127.0.0.0/8"],
    )
    [message] = read_all(kafka_bootstrap, topic, 1)
    assert message.key() == b"evt-1"
    assert message.value() == body
    assert headers_of(message) == {
        "vibes.callback.type": "event_processed",
        "vibes.event_type": "order_shipped",
        "vibes.action.type": "routing",
        "vibes.action.status": "failed",
        "vibes.action.status_reason": "person_not_subscribed",
        "vibes.callback.id": "cb-evt-1",
        "bridge.rule": "r1",
        "bridge.source.topic": "shop.orders",
        "bridge.source.partition": "0",
        "bridge.source.offset": "41",
    }
    labels = {
        "event_type": "order_shipped",
        "action_type": "routing",
        "status": "failed",
        "status_reason": "person_not_subscribed",
    }
    assert metrics.registry.get_sample_value("vibes_bridge_callbacks_total", labels) == 1
    assert answers(metrics, "stored") == 1


def test_refusals_produce_nothing_and_a_bad_body_is_a_dead_letter(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(1), new_topic(1)
    metrics = BridgeMetrics()

    async def scenario(client: httpx.AsyncClient) -> None:
        valid = orjson.dumps(callback())
        assert (await client.post("/vibes/callbacks/wrong-token", content=valid)).status_code == 404
        assert (await client.post("/vibes/callbacks", content=valid)).status_code == 404
        assert (await client.get(PATH)).status_code == 405
        assert (await client.post(PATH, content=b"x" * 5000)).status_code == 413
        assert (await client.post(PATH, content=b"{not json")).status_code == 200
        assert (
            await client.post(PATH, content=orjson.dumps({"callback_type": "x"}))
        ).status_code == 200
        sentinel = orjson.dumps(callback("sentinel"))
        assert (await client.post(PATH, content=sentinel)).status_code == 200
        sentinel_dlq = b"sentinel: not json either"
        assert (await client.post(PATH, content=sentinel_dlq)).status_code == 200

    run_receiver(
        kafka_bootstrap,
        scenario,
        metrics,
        topic=topic,
        _dlq=dlq,
        allow_from=["127.0.0.1/32"],
        max_body_bytes=4096,
    )
    [stored] = read_all(kafka_bootstrap, topic, 1)
    assert stored.key() == b"sentinel"
    letters = read_all(kafka_bootstrap, dlq, 3)
    assert [letter.value() for letter in letters] == [
        b"{not json",
        orjson.dumps({"callback_type": "x"}),
        b"sentinel: not json either",
    ]
    assert all(
        headers_of(letter)["bridge.error.reason"] == "invalid_callback" for letter in letters
    )
    assert [
        answers(metrics, name) for name in ("not_found", "method_not_allowed", "too_large")
    ] == [2, 1, 1]
    assert answers(metrics, "invalid") == 3
    assert (
        metrics.registry.get_sample_value(
            "vibes_bridge_dead_letters_total", {"reason": "invalid_callback"}
        )
        == 3
    )


def test_the_allow_list_and_the_forwarded_for_opt_in(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic, dlq = new_topic(1), new_topic(1)
    metrics = BridgeMetrics()
    outside = BridgeMetrics()

    async def through_proxy(client: httpx.AsyncClient) -> None:
        body = orjson.dumps(callback("via-proxy"))
        vibes = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1"}
        stranger = {"X-Forwarded-For": "198.51.100.1"}
        forged = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}  # stranger prepends a lie
        assert (await client.post(PATH, content=body, headers=vibes)).status_code == 200
        assert (await client.post(PATH, content=body, headers=stranger)).status_code == 403
        assert (await client.post(PATH, content=body, headers=forged)).status_code == 403

    run_receiver(
        kafka_bootstrap,
        through_proxy,
        metrics,
        topic=topic,
        _dlq=dlq,
        allow_from=["203.0.113.0/24"],
        trusted_proxies=["127.0.0.1/32"],
    )

    async def without_opt_in(client: httpx.AsyncClient) -> None:
        # 127.0.0.1 is not Vibes, and without trusted proxies the header cannot
        # help: the connection is closed at accept, before the header is read.
        body = orjson.dumps(callback("ignored-header"))
        for headers in ({"X-Forwarded-For": "203.0.113.9"}, {}):
            with pytest.raises(httpx.TransportError):
                await client.post(PATH, content=body, headers=headers)

    run_receiver(kafka_bootstrap, without_opt_in, outside, topic=topic, _dlq=dlq)
    [stored] = read_all(kafka_bootstrap, topic, 1)
    assert stored.key() == b"via-proxy"
    assert answers(metrics, "forbidden") == 2
    assert answers(outside, "forbidden") == 0
    refused = outside.registry.get_sample_value(
        "vibes_bridge_listener_connections_refused_total",
        {"listener": "callbacks", "reason": "address"},
    )
    assert refused == 2


def test_no_broker_means_503_within_the_deadline(new_topic: Callable[..., str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    metrics = BridgeMetrics()

    async def scenario(client: httpx.AsyncClient) -> None:
        answer = await client.post(PATH, content=orjson.dumps(callback()), timeout=10)
        assert answer.status_code == 503
        assert (await client.post(PATH, content=b"not json", timeout=10)).status_code == 503

    run_receiver(
        dead,
        scenario,
        metrics,
        topic="t",
        _dlq="d",
        allow_from=["127.0.0.1/32"],
        store_timeout_seconds=0.5,
    )
    assert answers(metrics, "unavailable") == 2
    assert (
        metrics.registry.get_sample_value(
            "vibes_bridge_callbacks_total",
            {
                "event_type": "order_shipped",
                "action_type": "routing",
                "status": "failed",
                "status_reason": "person_not_subscribed",
            },
        )
        is None
    )


def event_type_labels(metrics: BridgeMetrics) -> set[str]:
    """The event_type values of the callbacks counter's series, from the scraped text."""
    return {
        line.split('event_type="', 1)[1].split('"', 1)[0]
        for line in metrics.render().decode().splitlines()
        if line.startswith("vibes_bridge_callbacks_total{")
    }


def typed(event_id: str, event_type: str) -> bytes:
    body = callback(event_id)
    body["event_processed"]["event_type"] = event_type
    return orjson.dumps(body)


def test_forged_event_types_are_labelled_other_and_a_reload_widens_the_set(
    kafka_bootstrap: str, new_topic: Callable[..., str]
) -> None:
    """300 types nobody configured make one ``other`` series; the declared ones keep theirs."""
    topic, dlq = new_topic(1), new_topic(1)
    metrics = BridgeMetrics()
    started: list[CallbackReceiver] = []
    forged = [f"forged_{n}" for n in range(300)]

    async def scenario(client: httpx.AsyncClient) -> None:
        for n, event_type in enumerate([*forged, "Order_Shipped", "cart_abandoned"]):
            answer = await client.post(PATH, content=typed(f"e{n}", event_type), timeout=10)
            assert answer.status_code == 200
        assert event_type_labels(metrics) == {"order_shipped", "cart_abandoned", "other"}
        [receiver] = started
        receiver.use_event_types(frozenset({"forged_7"}))  # what a reload hands it
        for event_type in ("forged_7", "order_shipped"):
            answer = await client.post(PATH, content=typed("again", event_type), timeout=10)
            assert answer.status_code == 200

    run_receiver(
        kafka_bootstrap,
        scenario,
        metrics,
        topic=topic,
        _dlq=dlq,
        _event_types=frozenset({"order_shipped", "Cart_Abandoned"}),
        _started=started,
        allow_from=["127.0.0.1/32"],
    )
    assert event_type_labels(metrics) == {"order_shipped", "cart_abandoned", "other", "forged_7"}
    other = metrics.registry.get_sample_value(
        "vibes_bridge_callbacks_total",
        {
            "event_type": "other",
            "action_type": "routing",
            "status": "failed",
            "status_reason": "person_not_subscribed",
        },
    )
    assert other == 301  # 300 forged, then order_shipped after the reload dropped it
    assert len(read_all(kafka_bootstrap, topic, 304)) == 304  # every one stored verbatim
