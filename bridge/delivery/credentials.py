"""The Vibes Basic-auth credentials, re-read when their secret files change.

Kubernetes rotates a mounted secret by swapping a symlink (``..data``) to a new
directory, so the file under the configured name gets a new inode, size or
mtime while the process runs. The deliverer calls :meth:`CredentialsSource.refresh`
before each probe while Vibes answers 401/403, so a rotation ends the pause
without a restart. Values are kept as ``SecretStr`` and never logged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bridge.config import resolve_path
from bridge.config.model import VibesSettings
from bridge.errors import ConfigError, Problem
from bridge.vibes.api import basic_auth_header

log = logging.getLogger(__name__)

# What identifies one version of a file: a swapped symlink, a rewrite or an edit
# changes at least one of these.
FileSignature = tuple[int, int, int, int]


@dataclass(slots=True)
class _Part:
    """One of username/password: a fixed value, or a file and what was last read from it."""

    name: str
    value: SecretStr
    path: Path | None = None
    signature: FileSignature | None = None

    def reread(self) -> bool:
        """Read the file again when it changed; True when the value changed.

        A file that cannot be read (mid-rotation, say) keeps the last good value:
        the next probe tries again.
        """
        if self.path is None:
            return False
        try:
            signature = _signature(self.path)
            if signature == self.signature:
                return False
            value = _read_secret(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot re-read vibes.%s_file: %s", self.name, _why(exc))
            return False
        self.signature = signature
        if value == self.value.get_secret_value():
            return False
        self.value = SecretStr(value)
        return True


class CredentialsSource:
    """The current ``(username, password)`` and the Authorization header made of them."""

    def __init__(self, username: _Part, password: _Part) -> None:
        self._username = username
        self._password = password
        self._authorization = self._header()

    @classmethod
    def fixed(cls, username: str, password: str) -> CredentialsSource:
        """Credentials that never change (tests, or values from the environment)."""
        return cls(_Part("username", SecretStr(username)), _Part("password", SecretStr(password)))

    @classmethod
    def from_settings(cls, settings: VibesSettings, config_path: Path) -> CredentialsSource:
        """From ``vibes.username``/``password`` or their ``*_file`` forms.

        Relative ``*_file`` paths resolve against the configuration file's
        directory, as every path in the file does. An unreadable file is a
        ``ConfigError`` naming the key, never the content.
        """
        parts = [
            _part_from_settings(settings, name, config_path) for name in ("username", "password")
        ]
        return cls(*parts)

    def current(self) -> tuple[str, str]:
        """The username and password in force."""
        return self._username.value.get_secret_value(), self._password.value.get_secret_value()

    def authorization(self) -> str:
        """The ``Authorization`` header value, built once per credentials version."""
        return self._authorization

    def refresh(self) -> bool:
        """Re-read ``*_file`` credentials whose files changed; True when a value changed."""
        changed = self._username.reread()
        changed = self._password.reread() or changed
        if changed:
            self._authorization = self._header()
            log.info("re-read the Vibes credentials from their files")
        return changed

    def _header(self) -> str:
        return basic_auth_header(*self.current())


def _part_from_settings(settings: VibesSettings, name: str, config_path: Path) -> _Part:
    inline: SecretStr | None = getattr(settings, name)
    if inline is not None:
        return _Part(name, inline)
    file_name: str | None = getattr(settings, f"{name}_file")
    assert file_name is not None  # the model requires one of the two
    path = resolve_path(config_path, file_name)
    try:
        signature = _signature(path)
        value = _read_secret(path)
    except (OSError, UnicodeDecodeError) as exc:
        problem = Problem(str(config_path), None, f"cannot read vibes.{name}_file: {_why(exc)}")
        raise ConfigError([problem]) from None
    return _Part(name, SecretStr(value), path, signature)


def _signature(path: Path) -> FileSignature:
    # os.stat follows the symlink, so a swapped ..data link shows a new inode.
    stat = os.stat(path)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _read_secret(path: Path) -> str:
    # Same reading as bridge.config.loader.read_credentials: a trailing newline
    # from `echo secret > file` is not part of the secret.
    return path.read_text(encoding="utf-8").strip()


def _why(exc: OSError | UnicodeDecodeError) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not UTF-8 text"
