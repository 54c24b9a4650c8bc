"""Live reload: what needs a restart, which decoders stay, and the reloader's bookkeeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bridge.codecs import Decoder
from bridge.config import BridgeConfig
from bridge.loading import LoadedBridge, load_bridge
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.service.reload import (
    ConfigReloader,
    RulesTarget,
    file_sha256,
    live_decoders,
    restart_needed,
)
from bridge.service.runner import Service, _rules_user
from tests.support.configs import HEADER, WriteConfig

RULE = """\
rules:
  - name: shipped
    topic: shop.orders
    event_type: {event_type}
    recipient: {{external_person_id: id}}
"""


CALLBACKS = "callbacks: {token: 0123456789abcdef0123, port: 9000}\n"


def _settings(write_config: WriteConfig, header: str = HEADER, **rule: str) -> BridgeConfig:
    path = write_config(RULE.format(event_type=rule.get("event_type", "a")), header=header)
    return load_bridge(path).settings


def test_rules_and_the_rate_change_live(write_config: WriteConfig) -> None:
    running = _settings(write_config)
    faster = HEADER.replace(
        "  company_key: acme\n", "  company_key: acme\n  requests_per_second: 5\n"
    )
    assert restart_needed(running, _settings(write_config, event_type="b")) == []
    assert restart_needed(running, _settings(write_config, header=faster)) == []


@pytest.mark.parametrize(
    ("old", "new", "setting"),
    [
        ("version: 1\n", "version: 1\nkafka: {group_id: other}\n", "kafka.group_id"),
        ("version: 1\n", "version: 1\nmanagement: {port: 1}\n", "management.port"),
        ("version: 1\n", "version: 1\ndead_letter: {topic: x}\n", "dead_letter.topic"),
        ("version: 1\n", "version: 1\ndelivery: {max_in_flight: 3}\n", "delivery.max_in_flight"),
        ("version: 1\n", "version: 1\nfleet: {enabled: false}\n", "fleet.enabled"),
        ("password: ${TEST_VIBES_PASSWORD:-secret}", "password: other", "vibes.password"),
        ("  - topic: shop.shipments\n    format: json\n", "", "sources[].topic"),
        ("version: 1\n", f"version: 1\n{CALLBACKS}", "callbacks"),
    ],
)
def test_settings_a_running_process_keeps_need_a_restart(
    write_config: WriteConfig, old: str, new: str, setting: str
) -> None:
    running = _settings(write_config)
    changed = _settings(write_config, header=HEADER.replace(old, new))
    assert restart_needed(running, changed) == [setting]  # the name, never the value


class _Decoder:
    def __init__(self) -> None:
        self.closed = False

    def decode(self, value: bytes | None) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        self.closed = True


def test_a_topic_still_consumed_keeps_its_running_decoder() -> None:
    old_a, old_b, new_a = _Decoder(), _Decoder(), _Decoder()
    running: dict[str, Decoder] = {"a": old_a, "b": old_b}
    merged = live_decoders(running, {"a": new_a})
    assert merged == {"a": new_a, "b": old_b}


class _Target:
    def __init__(self) -> None:
        self.engines: list[Engine] = []
        self.rates: dict[str, float] = {}

    def use_rules(self, decoders: dict[str, Decoder], engine: Engine, retire: Any) -> None:
        self.engines.append(engine)
        retire()

    def set_rate(self, key: str, rate: float) -> None:
        self.rates[key] = rate


def _reloader(path: Path) -> tuple[ConfigReloader, _Target, BridgeMetrics]:
    target, metrics = _Target(), BridgeMetrics()
    loaded: LoadedBridge = load_bridge(path)
    reloader = ConfigReloader(loaded, RulesTarget(target.use_rules, target.set_rate), metrics)
    return reloader, target, metrics


def _sample(metrics: BridgeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_valid_file_is_applied_and_its_hash_shown(write_config: WriteConfig) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target, metrics = _reloader(path)
    first = file_sha256(path)
    assert _sample(metrics, "vibes_bridge_config_info", sha256=first) == 1
    path.write_text(HEADER + RULE.format(event_type="b"))
    assert asyncio.run(reloader.reload(force=False))
    assert len(target.engines) == 1
    assert target.rates == {"acme": 300.0}
    second = file_sha256(path)
    assert _sample(metrics, "vibes_bridge_config_info", sha256=second) == 1
    assert _sample(metrics, "vibes_bridge_config_info", sha256=first) is None
    assert _sample(metrics, "vibes_bridge_config_reloads_total", result="success") == 1
    assert reloader.current.settings.rules[0].event_type == "b"


def test_an_unchanged_file_is_not_reloaded_unless_forced(write_config: WriteConfig) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target, _metrics = _reloader(path)
    assert asyncio.run(reloader.reload(force=False))
    assert target.engines == []
    assert asyncio.run(reloader.reload(force=True))
    assert len(target.engines) == 1


def test_an_invalid_file_changes_nothing_and_each_problem_is_logged_once(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target, metrics = _reloader(path)
    running = reloader.current
    path.write_text(HEADER + RULE.format(event_type="not a type") + "bogus: 1\n")
    with caplog.at_level(logging.ERROR):
        assert not asyncio.run(reloader.reload(force=False))
        assert not asyncio.run(reloader.reload(force=False))  # the watcher again: same file
        assert not asyncio.run(reloader.reload(force=True))  # SIGHUP: counted, not re-listed
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert len(refused) == 2  # the bad event type and the unknown key, once each
    assert len(set(refused)) == 2
    assert any("still invalid" in r.getMessage() for r in caplog.records)
    assert target.engines == []
    assert reloader.current is running
    assert _sample(metrics, "vibes_bridge_config_reloads_total", result="failure") == 2


def test_a_missing_file_is_a_counted_failure(write_config: WriteConfig) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, _target, metrics = _reloader(path)
    path.unlink()
    assert not asyncio.run(reloader.reload(force=True))
    assert _sample(metrics, "vibes_bridge_config_reloads_total", result="failure") == 1


def test_a_restart_only_change_is_reported_and_the_rules_still_apply(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target, _metrics = _reloader(path)
    path.write_text(
        HEADER.replace("version: 1\n", "version: 1\nkafka: {group_id: moved}\n")
        + RULE.format(event_type="b")
    )
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(reloader.reload(force=False))
    assert len(target.engines) == 1
    needs = [r for r in caplog.records if "needs a restart" in r.getMessage()]
    assert [r.__dict__["settings"] for r in needs] == [["kafka.group_id"]]
    assert reloader.current.settings.kafka.group_id == "vibes-bridge"  # still the running one


class _Consumer:
    def __init__(self) -> None:
        self.engines: list[Engine] = []

    def use_rules(
        self, decoders: dict[str, Decoder], engine: Engine, retire: Callable[[], None]
    ) -> None:
        self.engines.append(engine)


class _Receiver:
    def __init__(self) -> None:
        self.event_types: frozenset[str] | None = None

    def use_event_types(self, event_types: frozenset[str]) -> None:
        self.event_types = event_types


@pytest.mark.parametrize("with_receiver", [True, False])
def test_a_reload_hands_the_receiver_the_new_rules_declared_event_types(
    write_config: WriteConfig, with_receiver: bool
) -> None:
    """The callbacks counter's event_type set follows the rules in force."""
    engine = load_bridge(
        write_config(
            """\
            rules:
              - name: literal
                topic: shop.orders
                event_type: Order_Paid
                recipient: {external_person_id: id}
              - name: templated
                topic: shop.orders
                event_type: {template: "order_{status}"}
                recipient: {external_person_id: id}
            """
        )
    ).engine
    consumer, receiver = _Consumer(), _Receiver()
    callbacks = SimpleNamespace(receiver=receiver) if with_receiver else None
    service = cast(Service, SimpleNamespace(consumer=consumer, callbacks=callbacks))
    _rules_user(service)({}, engine, lambda: None)
    assert consumer.engines == [engine]
    assert receiver.event_types == (frozenset({"Order_Paid"}) if with_receiver else None)


def test_a_reload_keeps_each_companys_own_rate_and_changes_the_common_one(
    write_config: WriteConfig,
) -> None:
    companies = "  companies:\n    brand-b: {requests_per_second: 40}\n"
    header = HEADER.replace("  company_key: acme\n", f"  company_key: acme\n{companies}")
    rule = (
        "rules:\n  - {name: b, topic: shop.orders, company_key: brand-b, event_type: t, "
        "recipient: {external_person_id: id}}\n"
    )
    path = write_config(RULE.format(event_type="a") + rule[len("rules:\n") :], header=header)
    reloader, target, _metrics = _reloader(path)
    faster = header.replace(
        "  company_key: acme\n", "  company_key: acme\n  requests_per_second: 500\n"
    )
    path.write_text(faster + RULE.format(event_type="b") + rule[len("rules:\n") :])
    assert asyncio.run(reloader.reload(force=False))
    assert target.rates == {"acme": 500.0, "brand-b": 40.0}
