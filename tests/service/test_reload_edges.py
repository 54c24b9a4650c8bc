"""Live reload's edges: every section classified (and documented), resources closed,
callbacks' allow-list applied, the watcher's scope, non-regular files, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.codecs import Decoder
from bridge.config import BridgeConfig
from bridge.config.model import CallbackSettings, SourceSettings, VibesSettings
from bridge.loading import LoadedBridge, load_bridge
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.service.callback_receiver import CallbackReceiver
from bridge.service.reload import (
    EVERY_KEY,
    LIVE_KEYS,
    ConfigReloader,
    RulesTarget,
    restart_needed,
)
from tests.support.configs import HEADER, WriteConfig
from tests.support.waiting import wait_until, wait_until_async

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"
RULE = """\
rules:
  - name: shipped
    topic: shop.orders
    event_type: {event_type}
    recipient: {{external_person_id: id}}
"""
REGISTRY_HEADER = HEADER.replace(
    "  - topic: shop.shipments\n    format: json\n",
    "  - topic: shop.shipments\n    format: confluent-avro\n"
    "    schema_registry: http://127.0.0.1:1\n",
)
CALLBACKS = "callbacks:\n  token: 0123456789abcdef0123\n  port: 9000\n"


class _Target:
    """Records what the reloader hands over; adopts (retires) at once, as the loop would."""

    def __init__(self) -> None:
        self.engines: list[Engine] = []
        self.callbacks: list[CallbackSettings] = []

    def use_rules(self, decoders: dict[str, Decoder], engine: Engine, retire: Any) -> None:
        self.engines.append(engine)
        retire()

    def set_rate(self, key: str, rate: float) -> None:
        pass

    def use_callbacks(self, settings: CallbackSettings) -> None:
        self.callbacks.append(settings)


def _reloader(path: Path, **kwargs: Any) -> tuple[ConfigReloader, _Target]:
    target = _Target()
    rules = RulesTarget(target.use_rules, target.set_rate, target.use_callbacks)
    return ConfigReloader(load_bridge(path), rules, BridgeMetrics(), **kwargs), target


def _settings(write_config: WriteConfig, header: str, event_type: str = "a") -> BridgeConfig:
    with load_bridge(write_config(RULE.format(event_type=event_type), header=header)) as loaded:
        return loaded.settings


# --- every section applies live or is named -------------------------------------------


def test_every_top_level_section_is_classified() -> None:
    assert set(LIVE_KEYS) == set(BridgeConfig.model_fields)
    models: dict[str, Any] = {
        "vibes": VibesSettings,
        "callbacks": CallbackSettings,
        "sources": SourceSettings,
    }
    for section, model in models.items():
        names = {field.alias or name for name, field in model.model_fields.items()}
        assert LIVE_KEYS[section] <= names, section


def _documented() -> dict[str, frozenset[str]]:
    """The reload table of docs/operations.md: section -> the keys it says apply live."""
    text = OPERATIONS.read_text(encoding="utf-8")
    block = text.split("<!-- reload-sections -->")[1].split("<!-- /reload-sections -->")[0]
    table: dict[str, frozenset[str]] = {}
    for row in re.findall(r"^\| `(\w+)` \| ([^|]+) \|", block, flags=re.MULTILINE):
        section, live = row
        keys = re.findall(r"`([\w.]+)`", live)
        table[section] = EVERY_KEY if live.strip().startswith("all") else frozenset(keys)
    return table


def test_the_documented_table_equals_the_code() -> None:
    assert _documented() == dict(LIVE_KEYS)


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        (CALLBACKS, ["callbacks"]),  # a receiver added
        (
            "kafka: {group_id: g2, bootstrap_servers: 'b:1'}\n"
            "management: {port: 1}\nfleet: {enabled: false}\n",
            ["kafka.bootstrap_servers", "kafka.group_id", "management.port", "fleet.enabled"],
        ),
    ],
)
def test_restart_settings_are_named_in_one_line(
    write_config: WriteConfig,
    caplog: pytest.LogCaptureFixture,
    addition: str,
    expected: list[str],
) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target = _reloader(path)
    path.write_text(HEADER + addition + RULE.format(event_type="b"))
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(reloader.reload(force=False))
    needs = [r for r in caplog.records if "needs a restart" in r.getMessage()]
    assert len(needs) == 1
    assert needs[0].__dict__["settings"] == expected
    assert needs[0].getMessage().endswith(", ".join(expected))
    assert len(target.engines) == 1  # the rules still apply


def test_a_narrowed_allow_list_applies_live(write_config: WriteConfig) -> None:
    wide = HEADER + CALLBACKS + "  allow_from: [0.0.0.0/0]\n"
    narrow = HEADER + CALLBACKS + "  allow_from: [10.1.0.0/16]\n  trusted_proxies: [10.9.0.1]\n"
    running = _settings(write_config, wide)
    assert restart_needed(running, _settings(write_config, narrow)) == []
    path = write_config(RULE.format(event_type="a"), header=wide)
    reloader, target = _reloader(path)
    path.write_text(narrow + RULE.format(event_type="a"))
    assert asyncio.run(reloader.reload(force=False))
    assert [(c.allow_from, c.trusted_proxies) for c in target.callbacks] == [
        (["10.1.0.0/16"], ["10.9.0.1"])
    ]
    callbacks = reloader.current.settings.callbacks
    assert callbacks is not None
    assert callbacks.allow_from == ["10.1.0.0/16"]


@pytest.mark.parametrize(
    ("addition", "key"),
    [
        ("  host: 127.0.0.1\n", "host"),
        ("  max_body_bytes: 2048\n", "max_body_bytes"),
        ("  topic: elsewhere\n", "topic"),
        ("  path: /other\n", "path"),
    ],
)
def test_other_callback_keys_need_a_restart(
    write_config: WriteConfig, addition: str, key: str
) -> None:
    running = _settings(write_config, HEADER + CALLBACKS)
    changed = _settings(write_config, HEADER + CALLBACKS + addition)
    assert restart_needed(running, changed) == [f"callbacks.{key}"]


# --- a reload closes what it replaces ---------------------------------------------------


def test_reloads_close_the_registry_clients_they_replace(write_config: WriteConfig) -> None:
    path = write_config(RULE.format(event_type="a"), header=REGISTRY_HEADER)
    opened: list[LoadedBridge] = []

    def loader(config: Path) -> LoadedBridge:
        loaded = load_bridge(config)
        opened.append(loaded)
        return loaded

    reloader, target = _reloader(path, loader=loader)
    first = reloader.current.registries
    assert len(first) == 1
    for n in range(5):
        path.write_text(REGISTRY_HEADER + RULE.format(event_type=f"t{n}"))
        assert asyncio.run(reloader.reload(force=False))
    assert len(target.engines) == 5
    every = [*first, *(r for loaded in opened for r in loaded.registries)]
    open_now = [r for r in every if not r._closed]
    assert open_now == list(reloader.current.registries)  # flat: one, the one in force
    assert len(open_now) == 1
    reloader.current.close()
    assert all(r._closed for r in every)


def test_a_dropped_topic_keeps_its_registry_until_the_restart(write_config: WriteConfig) -> None:
    path = write_config(RULE.format(event_type="a"), header=REGISTRY_HEADER)
    reloader, _target = _reloader(path)
    (client,) = reloader.current.registries
    path.write_text(
        HEADER.replace("  - topic: shop.shipments\n    format: json\n", "")
        + RULE.format(event_type="b")
    )
    assert asyncio.run(reloader.reload(force=False))
    assert not client._closed  # shop.shipments stays subscribed and still decodes
    assert reloader.current.registries == (client,)
    reloader.current.close()
    assert client._closed


# --- non-regular files, and shutdown during a reload ----------------------------------


def test_a_configuration_replaced_by_a_pipe_is_a_counted_failure_that_never_blocks(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target = _reloader(path)
    path.unlink()
    os.mkfifo(path)
    with caplog.at_level(logging.ERROR):
        assert not _bounded_run(reloader.reload(force=True))
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused == [
        f"configuration reload refused: {path}: cannot read the file "
        "(not a regular file (a named pipe))"
    ]
    assert target.engines == []


# A wait inside a loop run by _bounded_run: longer than its 30 s, so _bounded_run
# reports the stuck loop first, and the abandoned loop still ends by itself.
LOOP_WAIT_S = 60.0


def _bounded_run(coroutine: Any) -> Any:
    """``asyncio.run`` on a thread; fails instead of hanging when the loop cannot end."""
    outcome: list[Any] = []
    runner = threading.Thread(target=lambda: outcome.append(asyncio.run(coroutine)), daemon=True)
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive(), "the event loop did not end"
    return outcome[0]


def test_a_reload_in_progress_does_not_hold_up_the_end_of_the_loop(
    write_config: WriteConfig,
) -> None:
    path = write_config(RULE.format(event_type="a"), header=REGISTRY_HEADER)
    entered, release = threading.Event(), threading.Event()
    late: list[LoadedBridge] = []

    def stuck_loader(config: Path) -> LoadedBridge:
        entered.set()
        release.wait()  # a slow disk or registry: blocks until the test ends it
        late.append(load_bridge(config))
        return late[-1]

    reloader, target = _reloader(path, loader=stuck_loader)

    async def serve_then_stop() -> None:
        serving = asyncio.ensure_future(reloader.serve())
        reloader.request(force=True)
        await wait_until_async(entered.is_set, LOOP_WAIT_S, "the loader to be entered")
        serving.cancel()  # what SIGTERM does to the reloader's tasks
        with contextlib.suppress(asyncio.CancelledError):
            await serving

    _bounded_run(serve_then_stop())
    assert target.engines == []
    release.set()
    wait_until(
        lambda: bool(late) and all(r._closed for r in late[0].registries),
        10,
        "the late load closed",
    )


# --- the watcher's scope -----------------------------------------------------------------


async def _watching(reloader: ConfigReloader, *phases: tuple[Any, Any]) -> None:
    """Serve and watch; for each phase repeat ``act()`` until ``done()`` holds.

    Repeating covers the watcher's start (inotify is armed inside its first step,
    with no signal for it); the caller bounds the whole run.
    """
    tasks = [asyncio.ensure_future(reloader.serve()), asyncio.ensure_future(reloader.watch())]
    try:
        for act, done in phases:

            def acted_and_done(act: Any = act, done: Any = done) -> bool:
                if done():
                    return True
                act()
                return False

            await wait_until_async(acted_and_done, LOOP_WAIT_S, "a phase", 0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_writes_to_a_sibling_file_cause_no_reload_and_no_log_line(
    write_config: WriteConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_config(RULE.format(event_type="a"))
    reloader, target = _reloader(path)
    log_file = path.parent / "bridge.log"

    def write_config_as(event_type: str) -> Any:
        return lambda: path.write_text(HEADER + RULE.format(event_type=event_type))

    def write_log_then_config() -> None:
        with log_file.open("a") as stream:
            for n in range(20):
                stream.write(f'{{"message": "line {n}"}}\n')
                stream.flush()
        write_config_as("c")()

    with caplog.at_level(logging.DEBUG, logger="watchfiles"):
        _bounded_run(
            _watching(
                reloader,
                (write_config_as("b"), lambda: len(target.engines) == 1),  # the watcher is on
                (write_log_then_config, lambda: len(target.engines) == 2),
            )
        )
    assert len(target.engines) == 2  # the configuration's changes only
    detected = [r.getMessage() for r in caplog.records if "detected" in r.getMessage()]
    assert detected
    assert not [message for message in detected if "bridge.log" in message]


def test_a_change_to_a_named_file_reloads(write_config: WriteConfig, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "password").write_text("one")
    header = HEADER.replace(
        "password: ${TEST_VIBES_PASSWORD:-secret}", "password_file: secrets/password"
    )
    path = write_config(RULE.format(event_type="a"), header=header)
    reloader, target = _reloader(path)
    assert secrets / "password" in reloader.watched().files

    def rotate() -> None:
        (secrets / "password").write_text("two")

    _bounded_run(_watching(reloader, (rotate, lambda: target.engines)))
    assert target.engines


# --- the receiver takes the reloaded allow-list ------------------------------------------


class _NoSink:
    def produce(self, topic: str, key: bytes | None, value: bytes, headers: Any) -> Any:
        raise AssertionError("no request here should reach the sink")


def test_the_receiver_applies_a_narrowed_allow_list_and_proxies_to_the_next_request() -> None:
    token = "0123456789abcdef0123"
    base = {"host": "127.0.0.1", "port": 0, "token": token}
    settings = CallbackSettings.model_validate({**base, "allow_from": ["127.0.0.0/8"]})

    async def scenario() -> list[int]:
        receiver = CallbackReceiver(
            settings, token, _NoSink(), BridgeMetrics(), dead_letter_topic="dlq"
        )
        _host, port = await receiver.start()
        statuses = []
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                forwarded = {"X-Forwarded-For": "10.1.2.3"}
                statuses.append((await client.get("/x")).status_code)  # allowed: path 404
                receiver.apply(settings.model_copy(update={"allow_from": ["10.1.0.0/16"]}))
                statuses.append((await client.get("/x")).status_code)  # narrowed: 403
                statuses.append((await client.get("/x", headers=forwarded)).status_code)
                receiver.apply(
                    settings.model_copy(
                        update={"allow_from": ["10.1.0.0/16"], "trusted_proxies": ["127.0.0.1"]}
                    )
                )
                statuses.append((await client.get("/x", headers=forwarded)).status_code)
        finally:
            await receiver.stop()
        return statuses

    assert _bounded_run(scenario()) == [404, 403, 403, 404]


def test_a_configmap_symlink_swap_still_reloads(tmp_path: Path) -> None:
    mounted = tmp_path / "configmap"
    mounted.mkdir()
    versions = iter(range(1, 10_000))

    def publish(text: str) -> None:
        """As the kubelet does: a new timestamped directory, then ``..data`` renamed over."""
        data = mounted / f"..v{next(versions)}"
        data.mkdir()
        (data / "bridge.yaml").write_text(text)
        previous = (mounted / "..data").resolve() if (mounted / "..data").exists() else None
        (mounted / "..data_tmp").symlink_to(data.name)
        os.replace(mounted / "..data_tmp", mounted / "..data")
        if previous is not None:
            shutil.rmtree(previous)

    publish(HEADER + RULE.format(event_type="a"))
    visible = mounted / "bridge.yaml"
    visible.symlink_to("..data/bridge.yaml")
    reloader, target = _reloader(visible)
    (mounted / "unrelated.log").write_text("x")

    event_types: list[str] = []

    def reloaded(count: int) -> bool:
        if len(target.engines) < count:
            return False
        event_types.append(str(reloader.current.settings.rules[0].event_type))
        return True

    _bounded_run(
        _watching(
            reloader,
            (lambda: publish(HEADER + RULE.format(event_type="b")), lambda: reloaded(1)),
            # The next swap, after the directory of the first was deleted, is seen too.
            (lambda: publish(HEADER + RULE.format(event_type="c")), lambda: reloaded(2)),
        )
    )
    assert event_types == ["b", "c"]
