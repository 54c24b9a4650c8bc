"""Live reload in `vibes-bridge run`, against the real broker and simulator.

The bridge runs under load while its configuration changes: through a Kubernetes
ConfigMap-style symlink swap (the watcher), and through SIGHUP. Every record is
counted by what the simulator sent: none lost, none doubled across the switch.
"""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.bridge_service import BridgeProcess
from tests.support.kafka import produce
from tests.support.service import ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _configmap(directory: Path, version: str, text: str) -> Path:
    """Publish ``text`` the way the kubelet updates a ConfigMap volume: swap ``..data``."""
    data = directory / f"..{version}"
    data.mkdir()
    (data / "bridge.yaml").write_text(text)
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, directory / "..data")  # atomic, as the kubelet's rename
    visible = directory / "bridge.yaml"
    if not visible.is_symlink():
        visible.symlink_to("..data/bridge.yaml")
    return visible


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` whole, as editors and config tools do, so no reader sees half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _event_types_by_order(setup: ServiceSetup) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in setup.control.events():
        if event["outcome"] == "sent":
            body = event["body"]
            found.setdefault(body["event_data"]["order_id"], []).append(body["event_type"])
    return found


def _reloads(bridge: BridgeProcess, result: str) -> float:
    return bridge.metric("vibes_bridge_config_reloads_total", result=result)


def test_a_configmap_swap_under_load_applies_the_new_event_type_without_loss_or_doubles(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=3, sim_args=("--latency-ms", "20"))
    before = setup.config("template.yaml", delivery="max_in_flight: 4\n").read_text()
    after = before.replace("event_type: order_update", "event_type: order_changed")
    assert after != before
    mounted = setup.tmp_path / "configmap"
    mounted.mkdir()
    config = _configmap(mounted, "2026_11_27_v1", before)
    produce(setup.bootstrap, setup.topic, orders(400, keys=40))
    bridge = setup.start(config)
    wait_until(lambda: setup.control.stats()["sent"] >= 50, 60, "delivery under way")

    _configmap(mounted, "2026_11_27_v2", after)
    wait_until(lambda: _reloads(bridge, "success") == 1, 30, "the reload")
    new_hash = hashlib.sha256(after.encode()).hexdigest()
    assert bridge.metric("vibes_bridge_config_info", sha256=new_hash) == 1
    assert setup.control.stats()["sent"] < 400, "the load ended before the reload"
    produce(setup.bootstrap, setup.topic, orders(200, keys=40, start=400))

    wait_until(lambda: setup.control.stats()["sent"] == 600, 120, "every event sent")
    by_order = _event_types_by_order(setup)
    assert len(by_order) == 600
    assert all(len(types) == 1 for types in by_order.values())  # none doubled
    later = {by_order[f"o-{n}"][0] for n in range(400, 600)}
    assert later == {"order_changed"}  # records after the reload use the new rules
    assert "order_update" in {types[0] for types in by_order.values()}
    assert bridge.running
    assert bridge.stop() == 0


def test_an_invalid_file_keeps_the_old_rules_logs_each_problem_once_and_counts_it(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    config = setup.config()
    good = config.read_text()
    bridge = setup.start(config)
    produce(setup.bootstrap, setup.topic, orders(20))
    wait_until(lambda: setup.control.stats()["sent"] == 20, 60, "the first events")

    broken = good.replace("event_type: order_update", "event_type: not valid!") + "surprise: 1\n"
    _write_atomically(config, broken)
    wait_until(lambda: _reloads(bridge, "failure") == 1, 30, "the refused reload")
    bridge.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: _reloads(bridge, "failure") == 2, 30, "the refused SIGHUP reload")

    produce(setup.bootstrap, setup.topic, orders(20, start=20))
    wait_until(lambda: setup.control.stats()["sent"] == 40, 60, "events on the old rules")
    assert {t for types in _event_types_by_order(setup).values() for t in types} == {"order_update"}
    refused = [
        line["message"]
        for line in bridge.log_lines()
        if line["message"].startswith("configuration reload refused")
    ]
    assert len(refused) == 2, refused  # the event type and the unknown key, once each
    assert any("event_type" in message for message in refused)
    assert any("surprise" in message for message in refused)
    assert bridge.get("/readyz").status_code == 200

    # A valid file that also moves the group: the group needs a restart, the rules apply.
    moved = good.replace(setup.group, setup.group + "-moved").replace(
        "event_type: order_update", "event_type: order_changed"
    )
    _write_atomically(config, moved)
    wait_until(lambda: _reloads(bridge, "success") == 1, 30, "the reload")
    needs = [line for line in bridge.log_lines() if "needs a restart" in line["message"]]
    assert [line["settings"] for line in needs] == [["kafka.group_id"]]
    produce(setup.bootstrap, setup.topic, orders(1, start=40))
    wait_until(lambda: setup.control.stats()["sent"] == 41, 60, "an event on the new rules")
    assert _event_types_by_order(setup)["o-40"] == ["order_changed"]
    assert bridge.stop() == 0
