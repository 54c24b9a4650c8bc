"""Edges of the file's shape: non-regular paths, Kafka topic names, listeners on one port."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bridge.config.files import NotRegularFile, read_regular
from bridge.errors import ConfigError
from bridge.loading import load_bridge
from tests.support.configs import HEADER, WriteConfig

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)
# The first line after HEADER (1-based).
AFTER_HEADER = HEADER.count("\n") + 1


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, {})
    return [str(problem) for problem in caught.value.problems]


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    os.mkfifo(path)
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    path.mkdir()
    return path


def _dev_zero(_tmp_path: Path) -> Path:
    return Path("/dev/zero")


def _bounded(call: Callable[[], object]) -> object:
    """Run ``call`` in a thread and fail (instead of hanging the suite) if it blocks."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(_catch(call)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "reading the path blocked"
    return outcome[0]


def _catch(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("make", "kind"),
    [(_fifo, "a named pipe"), (_dev_zero, "a character device"), (_directory, "a directory")],
)
def test_a_configuration_that_is_not_a_regular_file_is_one_problem(
    tmp_path: Path, make: Callable[[Path], Path], kind: str
) -> None:
    path = make(tmp_path)
    error = _bounded(lambda: load_bridge(path, {}))
    assert isinstance(error, ConfigError)
    assert [str(p) for p in error.problems] == [
        f"{path}: cannot read the file: not a regular file ({kind})"
    ]


def test_a_secret_file_that_is_a_pipe_is_refused_at_its_line(
    tmp_path: Path, write_config: WriteConfig
) -> None:
    os.mkfifo(tmp_path / "password")
    header = HEADER.replace("password: ${TEST_VIBES_PASSWORD:-secret}", "password_file: password")
    path = write_config(RULE, header=header)
    error = _bounded(lambda: load_bridge(path, {}))
    assert isinstance(error, ConfigError)
    assert [str(p) for p in error.problems] == [
        f"{path}:5: cannot read password_file: not a regular file (a named pipe)"
    ]


def test_a_regular_file_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a\r\nb" * 10_000)
    assert read_regular(path) == b"a\r\nb" * 10_000
    with pytest.raises(NotRegularFile):
        read_regular(tmp_path)


@pytest.mark.parametrize(
    ("header_change", "key_line"),
    [
        (("  - topic: shop.orders\n", "  - topic: shop orders!\n"), 7),
        (("  - topic: shop.shipments\n", "  - topic: ..\n"), 9),
        (("  - topic: shop.shipments\n", "  - topic: '.'\n"), 9),
        (("  - topic: shop.shipments\n", f"  - topic: {'t' * 250}\n"), 9),
        (("version: 1\n", "version: 1\ndead_letter: {topic: 'dead letters'}\n"), 2),
        (("version: 1\n", "version: 1\nfleet: {topic: 'büdget'}\n"), 2),
    ],
)
def test_topic_names_kafka_refuses_are_refused_at_their_line(
    write_config: WriteConfig, header_change: tuple[str, str], key_line: int
) -> None:
    old, new = header_change
    rules = RULE.replace("shop.orders", "shop.shipments") if "orders!" in new else RULE
    path = write_config(rules, header=HEADER.replace(old, new))
    problems = _problems(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{key_line}: ")
    assert "is not a Kafka topic name" in problems[0]


def test_the_longest_legal_topic_name_is_accepted(write_config: WriteConfig) -> None:
    name = "a-Z_0." + "x" * 243
    header = HEADER.replace("shop.shipments", name)
    with load_bridge(write_config(RULE, header=header), {}) as loaded:
        assert name in loaded.decoders


def test_a_rule_topic_and_a_callbacks_topic_are_checked_too(write_config: WriteConfig) -> None:
    callbacks = "callbacks: {token: 0123456789abcdef0123, topic: 'a/b', port: 9000}\n"
    path = write_config(
        RULE.replace("topic: shop.orders", "topic: [shop.orders, 'x y']"), header=HEADER + callbacks
    )
    problems = _problems(path)
    assert any(f":{AFTER_HEADER}: " in p and "'a/b' is not a Kafka" in p for p in problems)
    assert any(f":{AFTER_HEADER + 2}: " in p and "'x y' is not a Kafka" in p for p in problems)


@pytest.mark.parametrize(
    ("management", "callbacks"),
    [
        ("{port: 9100}", "port: 9100"),
        ("{port: 9100, host: 127.0.0.1}", "port: 9100"),
        ("{port: 9100, host: 127.0.0.1}", "port: 9100\n  host: localhost"),
        ("{port: 9100, host: '::'}", "port: 9100\n  host: 10.0.0.1"),
    ],
)
def test_callbacks_on_the_management_port_is_refused_at_its_line(
    write_config: WriteConfig, management: str, callbacks: str
) -> None:
    header = HEADER + (
        f"management: {management}\ncallbacks:\n  token: 0123456789abcdef0123\n  {callbacks}\n"
    )
    path = write_config(RULE, header=header)
    assert _problems(path) == [
        f"{path}:{AFTER_HEADER + 3}: callbacks.port: 9100 is also management.port; "
        "the two listeners need different ports"
    ]


@pytest.mark.parametrize(
    ("management", "callbacks"),
    [
        ("{port: 9100}", "port: 9101"),
        ("{port: 0}", "port: 0"),
        ("{port: 9100, host: 127.0.0.1}", "port: 9100\n  host: 10.0.0.1"),
        ("{port: 9100, host: 127.0.0.1}", "port: 9100\n  host: '::1'"),
    ],
)
def test_listeners_that_can_both_bind_are_accepted(
    write_config: WriteConfig, management: str, callbacks: str
) -> None:
    header = HEADER + (
        f"management: {management}\ncallbacks:\n  token: 0123456789abcdef0123\n  {callbacks}\n"
    )
    with load_bridge(write_config(RULE, header=header), {}) as loaded:
        assert loaded.settings.callbacks is not None


@pytest.mark.parametrize(
    ("circuit", "words"),
    [
        ("{failures: 0}", "failures"),
        ("{open_seconds: 10, max_open_seconds: 5}", "open_seconds must not exceed"),
        ("{open_seconds: 0}", "open_seconds"),
        ("{failure: 3}", "failure"),
    ],
)
def test_a_wrong_circuit_setting_is_a_problem(
    write_config: WriteConfig, circuit: str, words: str
) -> None:
    header = HEADER.replace("version: 1\n", f"version: 1\ndelivery: {{circuit: {circuit}}}\n")
    problems = _problems(write_config(RULE, header=header))
    assert len(problems) == 1, problems
    assert words in problems[0]


def test_the_circuit_defaults_and_a_valid_setting(write_config: WriteConfig) -> None:
    with load_bridge(write_config(RULE), {}) as loaded:
        circuit = loaded.settings.delivery.circuit
        assert (circuit.failures, circuit.open_seconds, circuit.max_open_seconds) == (5, 1.0, 30.0)
    header = HEADER.replace("version: 1\n", "version: 1\ndelivery: {circuit: {failures: 2}}\n")
    with load_bridge(write_config(RULE, header=header), {}) as loaded:
        assert loaded.settings.delivery.circuit.failures == 2
