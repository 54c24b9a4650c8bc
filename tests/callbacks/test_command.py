"""``vibes-bridge callbacks register|list|delete`` against the simulator's Callback API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.callbacks.support import TOKEN, callbacks_cli
from tests.support.bridge_service import service_config
from tests.support.simulator import AUTH, SimProcess, start_sim

URL = f"https://bridge.example.com/vibes/callbacks/{TOKEN}"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimProcess]:
    process = start_sim((), tmp_path_factory.mktemp("sim") / "sim.log")
    yield process
    process.stop()


@pytest.fixture
def config(tmp_path: Path, sim: SimProcess) -> Iterator[Path]:
    path = service_config(
        tmp_path / "bridge.yaml",
        bootstrap="127.0.0.1:9",
        sim_url=sim.url,
        group="g",
        dead_letter_topic="dlq",
        sources=["orders"],
        rules="rules:\n  - name: r\n    topic: orders\n    event_type: e\n"
        "    recipient:\n      external_person_id: id\n",
    )
    yield path
    for line in callbacks_cli("list", "-c", str(path)).stdout.splitlines():  # leave none behind
        if not line.startswith("no "):
            callbacks_cli("delete", "-c", str(path), line.split()[0])


def test_register_list_and_delete(config: Path) -> None:
    registered = callbacks_cli("register", "-c", str(config), "--url", URL)
    assert registered.returncode == 0, registered.stderr
    callback_id = registered.stdout.split()[-1]
    listed = callbacks_cli("list", "-c", str(config))
    assert listed.returncode == 0
    assert callback_id in listed.stdout
    assert "event_type=*" in listed.stdout
    assert TOKEN not in listed.stdout  # the receiver's secret is hidden
    assert "/vibes/callbacks/<token>" in listed.stdout
    assert TOKEN in callbacks_cli("list", "-c", str(config), "--show-urls").stdout
    deleted = callbacks_cli("delete", "-c", str(config), callback_id)
    assert deleted.returncode == 0
    assert callbacks_cli("list", "-c", str(config)).stdout.strip() == "no callback registrations"


def test_an_overlapping_registration_is_explained(config: Path) -> None:
    first = callbacks_cli("register", "-c", str(config), "--url", URL)
    assert first.returncode == 0
    second = callbacks_cli("register", "-c", str(config), "--url", URL + "x")
    assert second.returncode == 1
    assert "already exists with overlapping dates" in second.stderr
    assert first.stdout.split()[-1] in second.stderr
    assert TOKEN not in second.stderr
    # A filter to one event type is a registration of its own; one ending before is too.
    per_type = callbacks_cli(
        "register", "-c", str(config), "--url", URL, "--event-type", "order_shipped"
    )
    assert per_type.returncode == 0, per_type.stderr


def test_vibes_refusing_a_conflict_itself(config: Path, sim: SimProcess) -> None:
    """Another client registered meanwhile: the simulator's 409 comes through as a message."""
    body = {"callback_type": "event_processed", "destination": {"url": URL}}
    path = "/companies/demo/config/callbacks"
    with httpx.Client(base_url=sim.url, auth=AUTH) as client:
        assert client.post(path, json=body).status_code == 201
        refused = client.post(path, json=body)
    assert refused.status_code == 409
    assert "overlapping dates" in refused.json()["errors"][0]["message"]


def test_unknown_ids_and_bad_credentials_exit_1(config: Path, tmp_path: Path) -> None:
    missing = callbacks_cli("delete", "-c", str(config), "no-such-id")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr
    wrong = config.read_text().replace("password: demo", "password: Hunter2-not-it")
    (tmp_path / "wrong.yaml").write_text(wrong)
    refused = callbacks_cli("list", "-c", str(tmp_path / "wrong.yaml"))
    assert refused.returncode == 1
    assert "credentials were refused" in refused.stderr
    assert "Hunter2" not in refused.stderr


def test_a_bad_url_is_a_usage_error(config: Path) -> None:
    assert callbacks_cli("register", "-c", str(config), "--url", "ftp://x/y").returncode == 2
