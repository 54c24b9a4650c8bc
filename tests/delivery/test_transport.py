"""Transport selection and TLS settings."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport

from bridge.config.model import TlsSettings
from bridge.delivery import DEFAULT_TRANSPORT, TransportKind, build_transport
from bridge.delivery.transport import ssl_context


def test_the_default_is_the_measured_choice() -> None:
    assert DEFAULT_TRANSPORT is TransportKind.AIOHTTP
    assert isinstance(build_transport(), AiohttpTransport)
    assert isinstance(build_transport(TransportKind.HTTPCORE), httpx.AsyncHTTPTransport)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made with the openssl command."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.crt", folder / "client.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=vibes-bridge-test", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_custom_ca_is_trusted(certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    context = ssl_context(TlsSettings(ca_file=str(cert)))
    subjects = [str(ca.get("subject")) for ca in context.get_ca_certs()]
    assert any("vibes-bridge-test" in subject for subject in subjects)
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_a_client_certificate_loads(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl_context(TlsSettings(cert_file=str(cert), key_file=str(key)))
    assert context.check_hostname


def test_a_mismatched_key_is_refused(certificate: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = certificate
    wrong = tmp_path / "wrong.key"
    wrong.write_text("not a key")
    with pytest.raises(ssl.SSLError):
        ssl_context(TlsSettings(cert_file=str(cert), key_file=str(wrong)))
