"""The Vibes Basic-auth credentials, per company key, re-read when their secret files change.

A company under ``vibes.companies`` with a pair of its own has its own
:class:`CredentialsSource`; every other company key uses the ``vibes`` section's
(:class:`CompanyCredentials`).

Kubernetes rotates a mounted secret by swapping a symlink (``..data``) to a new
directory, so the file under the configured name gets a new inode, size or
mtime while the process runs. The deliverer calls :meth:`CredentialsSource.refresh`
before each probe while Vibes answers 401/403, so a rotation ends the pause
without a restart. Values are kept as ``SecretStr`` and never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bridge.config import resolve_path
from bridge.config.model import CompanySettings, VibesSettings
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
    prefix: str = "vibes"  # where the key is written, for the warning

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
            log.warning("cannot re-read %s.%s_file: %s", self.prefix, self.name, _why(exc))
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
    def from_settings(
        cls,
        settings: VibesSettings | CompanySettings,
        config_path: Path,
        prefix: str = "vibes",
    ) -> CredentialsSource:
        """From ``username``/``password`` or their ``*_file`` forms, written at ``prefix``.

        Relative ``*_file`` paths resolve against the configuration file's
        directory, as every path in the file does. An unreadable file is a
        ``ConfigError`` naming the key, never the content.
        """
        parts = [
            _part_from_settings(settings, name, config_path, prefix)
            for name in ("username", "password")
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


class CompanyCredentials:
    """Each company key's :class:`CredentialsSource`: its own, or the ``vibes`` section's.

    Sources are shared, not copied: every company without a pair of its own uses
    the one default source, so a rotated ``vibes.password_file`` is read once for all.
    """

    def __init__(
        self,
        default: CredentialsSource | None,
        companies: Mapping[str, CredentialsSource] | None = None,
    ) -> None:
        self._default = default
        self._companies = dict(companies or {})

    @classmethod
    def from_settings(cls, settings: VibesSettings, config_path: Path) -> CompanyCredentials:
        """The ``vibes`` section's pair (when given) and each company's own."""
        default = None
        if settings.has_credentials:
            default = CredentialsSource.from_settings(settings, config_path)
        companies = {
            key: CredentialsSource.from_settings(company, config_path, f"vibes.companies.{key}")
            for key, company in settings.companies.items()
            if company.has_credentials
        }
        return cls(default, companies)

    def for_company(self, company_key: str) -> CredentialsSource:
        """The source ``company_key``'s requests are signed with.

        ``validate`` refuses a file where a company key in use has none; a key
        from nowhere (a test's) without a default is a ``KeyError``.
        """
        source = self._companies.get(company_key, self._default)
        if source is None:
            raise KeyError(f"company key {company_key!r} has no credentials")
        return source

    def refresh(self, company_key: str) -> bool:
        """Re-read the company's ``*_file`` credentials that changed; True when they did."""
        return self.for_company(company_key).refresh()


def _part_from_settings(
    settings: VibesSettings | CompanySettings, name: str, config_path: Path, prefix: str
) -> _Part:
    inline: SecretStr | None = getattr(settings, name)
    if inline is not None:
        return _Part(name, inline, prefix=prefix)
    file_name: str | None = getattr(settings, f"{name}_file")
    assert file_name is not None  # the model requires one of the two
    path = resolve_path(config_path, file_name)
    try:
        signature = _signature(path)
        value = _read_secret(path)
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read {prefix}.{name}_file: {_why(exc)}"
        raise ConfigError([Problem(str(config_path), None, message)]) from None
    return _Part(name, SecretStr(value), path, signature, prefix)


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
