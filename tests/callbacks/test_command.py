"""``vibes-bridge callbacks register|list|delete`` against the simulator's Callback API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.vibes.callback_urls import check_destination_url
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


# ------------------------------------------------ hostile URLs: refused or hidden, never echoed

HOST = "bridge.example.com"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https:///vibes/callbacks/t", "no host"),
        ("https://:443/vibes/callbacks/t", "no host"),
        ("https://user:pw@/vibes/callbacks/t", "no host"),
        (f"https://{HOST}/vibes callbacks/{TOKEN}", "spaces or control characters"),
        (f"https://{HOST}/vibes/callbacks/{TOKEN}\n", "spaces or control characters"),
        (f"https://{HOST}/vibes/\r/callbacks/{TOKEN}", "spaces or control characters"),
        (f"https://{HOST}/vibes/\tcallbacks/{TOKEN}", "spaces or control characters"),
        (f"https://{HOST}/vibes/callbacks/{TOKEN}\x7f", "spaces or control characters"),
        (f"https://{HOST}/vibes/callbacks/\u200b{TOKEN}", "spaces or control characters"),
        (f"ftp://{HOST}/vibes/callbacks/{TOKEN}", "https://"),
        (f"{HOST}/vibes/callbacks/{TOKEN}", "https://"),
        ("javascript:alert(1)", "https://"),
        (f"https://{HOST}:99999/vibes/callbacks/{TOKEN}", "port"),
        (f"https://{HOST}:https/vibes/callbacks/{TOKEN}", "port"),
        (f"https://[::1/vibes/callbacks/{TOKEN}", "cannot be read"),
    ],
)
def test_register_refuses_a_url_that_cannot_receive_callbacks_in_one_line(
    config: Path, url: str, problem: str
) -> None:
    result = callbacks_cli("register", "-c", str(config), "--url", url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "--url" in error
    assert problem in error
    assert TOKEN not in result.stderr  # the URL, token and all, is never repeated
    listed = callbacks_cli("list", "-c", str(config))
    assert listed.stdout.strip() == "no callback registrations"  # nothing was sent to Vibes


@pytest.mark.parametrize(
    "url",
    [
        "https://a\x00b.example.com/x",  # NUL cannot travel in argv, so checked here
        "https://example.com/x\x85",  # C1 "next line"
        "https://example.com/\u202ex",  # a bidi override: shows text reversed
        "https://example.com/\u00a0x",  # a no-break space
    ],
)
def test_the_url_check_refuses_every_control_and_invisible_character(url: str) -> None:
    with pytest.raises(ValueError, match="spaces or control characters"):
        check_destination_url(url)


@pytest.mark.parametrize(
    "url",
    [
        f"https://{HOST}/vibes/callbacks/{TOKEN}",
        f"http://{HOST}:8443/vibes/callbacks/{TOKEN}",
        f"HTTPS://{HOST}/vibes/callbacks/{TOKEN}",
        f"https://user:pw@{HOST}/vibes/callbacks/{TOKEN}",
        f"https://[2001:db8::1]:443/vibes/callbacks/{TOKEN}",
        "https://bücher.example/vibes/callbacks/t",
    ],
)
def test_the_url_check_takes_urls_that_can_receive_callbacks(url: str) -> None:
    check_destination_url(url)


SECRETS = ("s3cret-Pa55", "cb-user")


def _register_directly(sim: SimProcess, url: str, event_type: str) -> None:
    """As another client (or an older bridge) might have: Vibes keeps whatever it was given."""
    body = {
        "callback_type": "event_processed",
        "destination": {"url": url},
        "event_processed": {"event_type": event_type},
    }
    with httpx.Client(base_url=sim.url, auth=AUTH) as client:
        answer = client.post("/companies/demo/config/callbacks", json=body)
    assert answer.status_code == 201, answer.text


def test_list_hides_credentials_and_token_in_every_url(config: Path, sim: SimProcess) -> None:
    with_password = f"https://cb-user:s3cret-Pa55@{HOST}/vibes/callbacks/{TOKEN}?k=v#f"
    registered = callbacks_cli("register", "-c", str(config), "--url", with_password)
    assert registered.returncode == 0, registered.stderr
    assert not any(secret in registered.stdout + registered.stderr for secret in SECRETS)
    _register_directly(sim, f"https://cb-user@{HOST}:8443/vibes/callbacks/{TOKEN}", "t1")
    _register_directly(sim, f"https://cb-user:s3cret-Pa55@{HOST}/{TOKEN}/", "t2")
    _register_directly(sim, f"https://cb-user:s3cret-Pa55@[::1/{TOKEN}", "t3")
    _register_directly(sim, f"https://{HOST}/\x1b[2J{TOKEN}\r\n/x", "t4")

    listed = callbacks_cli("list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    text = listed.stdout
    assert len(text.splitlines()) == 5
    for secret in (*SECRETS, TOKEN, "k=v", "\x1b", "\r"):
        assert secret not in text
    assert f"url=https://<credentials>@{HOST}/vibes/callbacks/<token>" in text
    assert f"url=https://<credentials>@{HOST}:8443/vibes/callbacks/<token>" in text
    assert text.count("url=<not a valid URL>") == 2  # where its secrets sit cannot be told

    shown = callbacks_cli("list", "-c", str(config), "--show-urls").stdout
    assert TOKEN in shown  # the operator asked
    assert "s3cret-Pa55" in shown
    assert "\x1b" not in shown
    assert "\\x1b[2J" in shown  # another client's control characters are escaped, not written

    clash = callbacks_cli("register", "-c", str(config), "--url", with_password)
    assert clash.returncode == 1
    assert "<credentials>@" in clash.stderr
    assert not any(secret in clash.stderr for secret in (*SECRETS, TOKEN))
