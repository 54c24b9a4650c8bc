"""The callbacks: section: defaults, the token from the environment or a file, refusals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.loading import LoadedBridge, load_bridge
from tests.support.configs import HEADER

RULE = """\
rules:
  - name: r
    topic: shop.orders
    event_type: order_update
    recipient:
      external_person_id: customer_id
"""
TOKEN = "0123456789abcdef0123"


def load(tmp_path: Path, section: str, environ: dict[str, str] | None = None) -> LoadedBridge:
    path = tmp_path / "bridge.yaml"
    path.write_text(HEADER + RULE + textwrap.dedent(section))
    return load_bridge(path, environ or {})


def problems(tmp_path: Path, section: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, section, environ)
    return "\n".join(str(problem) for problem in caught.value.problems)


def test_no_section_no_receiver(tmp_path: Path) -> None:
    loaded = load(tmp_path, "")
    assert loaded.settings.callbacks is None
    assert loaded.callback_token is None


def test_defaults_and_the_token_from_the_environment(tmp_path: Path) -> None:
    loaded = load(tmp_path, "callbacks:\n  token: ${CALLBACK_TOKEN}\n", {"CALLBACK_TOKEN": TOKEN})
    settings = loaded.settings.callbacks
    assert settings is not None
    assert (settings.port, settings.path, settings.topic) == (
        9465,
        "/vibes/callbacks",
        "vibes-bridge.callbacks",
    )
    assert settings.allow_from is None
    assert settings.trusted_proxies == []
    assert settings.store_timeout_seconds < 2
    assert loaded.callback_token is not None
    assert loaded.callback_token.get_secret_value() == TOKEN


def test_the_token_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    loaded = load(tmp_path, "callbacks:\n  token_file: token\n")
    assert loaded.callback_token is not None
    assert loaded.callback_token.get_secret_value() == TOKEN


def test_a_short_token_is_refused_without_being_shown(tmp_path: Path) -> None:
    text = problems(tmp_path, "callbacks:\n  token: ${T}\n", {"T": "guessable"})
    assert "at least 16" in text
    assert "guessable" not in text


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("callbacks:\n  port: 9465\n", "token or callbacks.token_file"),
        ("callbacks:\n  token_file: missing\n", "cannot read token_file"),
        ("callbacks:\n  token: ${T}\n  allow_from: [10.0.0.0/33]\n", "not an IP address"),
        ("callbacks:\n  token: ${T}\n  max_body_bytes: 10\n", "max_body_bytes"),
        (
            "callbacks:\n  token: ${T}\n  tls:\n    cert_file: nope.pem\n    key_file: nope.key\n",
            "cannot read tls.cert_file",
        ),
        ("callbacks:\n  token: ${T}\n  colour: blue\n", "unknown key 'colour'"),
    ],
)
def test_bad_sections_are_problems_with_lines(tmp_path: Path, section: str, expected: str) -> None:
    text = problems(tmp_path, section, {"T": TOKEN})
    assert expected in text
    assert "bridge.yaml:" in text


def test_a_token_written_in_the_file_is_warned_about(tmp_path: Path) -> None:
    loaded = load(tmp_path, f"callbacks:\n  token: {TOKEN}\n")
    [warning] = [str(w) for w in loaded.warnings if "callbacks.token" in str(w)]
    assert "${CALLBACK_TOKEN} or token_file" in warning
    assert TOKEN not in warning
