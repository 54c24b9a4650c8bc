"""TLS settings (``tls: {ca_file, cert_file, key_file}``) as an ``ssl.SSLContext``.

Built when the file is loaded, so that an unreadable CA or key is a ``FILE:LINE``
problem at start-up rather than a failed request an hour later. Messages name the
setting and the reason, never the files' contents.
"""

from __future__ import annotations

import ssl

from bridge.config.loader import resolve_path
from bridge.config.model import ServerTlsSettings, TlsSettings
from bridge.config.yaml_source import KeyPath, SourceDocument
from bridge.errors import Problem


class _EncryptedKeyError(Exception):
    """Raised by the password callback: the service has no one to type a passphrase."""


def _no_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal and block start-up.
    raise _EncryptedKeyError


def tls_context(
    tls: TlsSettings, document: SourceDocument, where: KeyPath
) -> tuple[ssl.SSLContext | None, list[Problem]]:
    """A verifying client context with the CA and client certificate of ``tls``."""
    context = ssl.create_default_context()
    if tls.ca_file is not None:
        try:
            context.load_verify_locations(cafile=resolve_path(document.path, tls.ca_file))
        except (OSError, ssl.SSLError) as exc:
            return None, [document.problem((*where, "ca_file"), _reason("ca_file", exc))]
    if tls.cert_file is not None and tls.key_file is not None:
        problems = _load_certificate(context, tls.cert_file, tls.key_file, document, where)
        if problems:
            return None, problems
    return context, []


def server_tls_context(
    tls: ServerTlsSettings, document: SourceDocument, where: KeyPath
) -> tuple[ssl.SSLContext | None, list[Problem]]:
    """A server context with the receiver's certificate (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    problems = _load_certificate(context, tls.cert_file, tls.key_file, document, where)
    return (None, problems) if problems else (context, [])


def _load_certificate(
    context: ssl.SSLContext,
    cert_file: str,
    key_file: str,
    document: SourceDocument,
    where: KeyPath,
) -> list[Problem]:
    """Load a certificate and its key into ``context``; the problems, at their keys."""
    try:
        context.load_cert_chain(
            resolve_path(document.path, cert_file),
            resolve_path(document.path, key_file),
            password=_no_passphrase,
        )
    except _EncryptedKeyError:
        message = "tls.key_file is encrypted; give an unencrypted key (a mounted secret)"
        return [document.problem((*where, "key_file"), message)]
    except (OSError, ssl.SSLError) as exc:
        return [document.problem((*where, "cert_file"), _reason("cert_file", exc))]
    return []


def _reason(name: str, exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"cannot use tls.{name}: not a valid PEM file ({exc.reason or 'unreadable'})"
    return f"cannot read tls.{name}: {exc.strerror or type(exc).__name__}"
