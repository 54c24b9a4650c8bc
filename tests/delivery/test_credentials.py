"""Credentials from values or files, re-read when a mounted secret is rotated."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from bridge.config.model import VibesSettings
from bridge.delivery import CredentialsSource
from bridge.errors import ConfigError
from bridge.vibes.api import basic_auth_header


def settings(**fields: object) -> VibesSettings:
    return VibesSettings.model_validate({"company_key": "demo", **fields})


def test_fixed_values() -> None:
    source = CredentialsSource.fixed("user", "pass")
    assert source.current() == ("user", "pass")
    assert source.authorization() == basic_auth_header("user", "pass")
    assert source.refresh() is False


def test_inline_settings() -> None:
    source = CredentialsSource.from_settings(
        settings(username=SecretStr("u"), password=SecretStr("p")), Path("/nowhere/bridge.yaml")
    )
    assert source.current() == ("u", "p")


def test_relative_files_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "user").write_text("file-user\n")
    (tmp_path / "pass").write_text("file-pass\n")
    source = CredentialsSource.from_settings(
        settings(username_file="user", password_file="pass"), tmp_path / "bridge.yaml"
    )
    assert source.current() == ("file-user", "file-pass")


def test_an_unreadable_file_is_a_config_error_without_content(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        CredentialsSource.from_settings(
            settings(username=SecretStr("u"), password_file="missing"), tmp_path / "bridge.yaml"
        )
    assert "vibes.password_file" in str(raised.value)


def kubernetes_secret(root: Path, value: str, version: int) -> None:
    """Lay out a secret as the kubelet does: password -> ..data/password, ..data -> ..vN."""
    target = root / f"..v{version}"
    target.mkdir()
    (target / "password").write_text(value)
    link = root / "..data"
    staging = root / "..data_tmp"
    staging.symlink_to(target.name)
    os.replace(staging, link)  # the atomic swap
    if not (root / "password").is_symlink():
        (root / "password").symlink_to("..data/password")


def test_refresh_follows_a_swapped_kubernetes_symlink(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    kubernetes_secret(secret, "first", 1)
    source = CredentialsSource.from_settings(
        settings(username=SecretStr("u"), password_file=str(secret / "password")),
        tmp_path / "bridge.yaml",
    )
    assert source.refresh() is False
    kubernetes_secret(secret, "second", 2)
    assert source.refresh() is True
    assert source.current() == ("u", "second")
    assert source.authorization() == basic_auth_header("u", "second")
    assert source.refresh() is False


def test_refresh_sees_an_in_place_rewrite(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("aaaa")
    source = CredentialsSource.from_settings(
        settings(username=SecretStr("u"), password_file="password"), tmp_path / "bridge.yaml"
    )
    secret.write_text("bbbb")  # same inode, same size
    os.utime(secret, ns=(secret.stat().st_atime_ns, secret.stat().st_mtime_ns + 1_000_000))
    assert source.refresh() is True
    assert source.current() == ("u", "bbbb")


def test_a_file_missing_during_rotation_keeps_the_last_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "password"
    secret.write_text("keep-me-secret")
    source = CredentialsSource.from_settings(
        settings(username=SecretStr("u"), password_file="password"), tmp_path / "bridge.yaml"
    )
    secret.unlink()
    with caplog.at_level(logging.WARNING, logger="bridge.delivery"):
        assert source.refresh() is False
    assert source.current() == ("u", "keep-me-secret")
    assert "password_file" in caplog.text
    assert "keep-me-secret" not in caplog.text
