"""A confluent-avro source's Schema Registry: both forms, credentials, TLS, shared clients."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.codecs.avro_schema import parse_avro_schema_text
from bridge.errors import ConfigError, SchemaRegistryUnavailable
from bridge.loading import LoadedBridge, load_bridge
from devtools.avro_encode import encode_avro
from tests.support.configs import HEADER, WriteConfig
from tests.support.schema_registry import (
    TestSchemaRegistry,
    confluent_frame,
    running_schema_registry,
)

RULE = (
    "rules:\n  - {name: r, topic: shop.orders, event_type: t, "
    "recipient: {external_person_id: id}}\n"
)
SCHEMA_TEXT = '{"type": "record", "name": "R", "fields": [{"name": "id", "type": "string"}]}'
USER, PASSWORD = "registry-user", "registry-S3cr3t"


def _header(*sources: str) -> str:
    """HEADER with its second source replaced by confluent-avro ``sources``."""
    base = HEADER.split("  - topic: shop.shipments")[0]
    return base + "".join(sources)


def _source(topic: str, registry: str) -> str:
    return f"  - topic: {topic}\n    format: confluent-avro\n    schema_registry: {registry}\n"


def _decode_one(loaded: LoadedBridge, registry: TestSchemaRegistry, topic: str) -> object:
    schema_id = registry.register(f"{topic}-value", SCHEMA_TEXT)
    body = encode_avro(parse_avro_schema_text(SCHEMA_TEXT), {"id": "x-1"})
    return loaded.decoders[topic].decode(confluent_frame(schema_id, body))


@pytest.fixture
def schema_registry() -> Iterator[TestSchemaRegistry]:
    with running_schema_registry() as registry:
        yield registry


@pytest.fixture
def auth_registry() -> Iterator[TestSchemaRegistry]:
    with running_schema_registry(auth=(USER, PASSWORD)) as registry:
        yield registry


def test_the_plain_url_form_still_works(
    write_config: WriteConfig, schema_registry: TestSchemaRegistry
) -> None:
    path = write_config(RULE, header=_header(_source("shop.x", schema_registry.url)))
    with load_bridge(path, {}) as loaded:
        assert _decode_one(loaded, schema_registry, "shop.x") == {"id": "x-1"}
        assert loaded.settings.sources[1].schema_registry is not None


def test_credentials_from_the_environment_are_sent(
    write_config: WriteConfig, auth_registry: TestSchemaRegistry
) -> None:
    registry = f"{{url: '{auth_registry.url}', username: '${{REG_USER}}', password: '${{REG_PW}}'}}"
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with load_bridge(path, {"REG_USER": USER, "REG_PW": PASSWORD}) as loaded:
        assert loaded.warnings == ()
        assert _decode_one(loaded, auth_registry, "shop.x") == {"id": "x-1"}
    assert auth_registry.unauthorized == 0


def test_credentials_from_files_are_sent(
    write_config: WriteConfig, auth_registry: TestSchemaRegistry, tmp_path: Path
) -> None:
    (tmp_path / "user").write_text(USER + "\n")
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    registry = f"{{url: '{auth_registry.url}', username_file: user, password_file: pw}}"
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with load_bridge(path, {}) as loaded:
        assert _decode_one(loaded, auth_registry, "shop.x") == {"id": "x-1"}


def test_wrong_or_missing_credentials_are_transient_and_never_quoted(
    write_config: WriteConfig, auth_registry: TestSchemaRegistry
) -> None:
    wrong = f"{{url: '{auth_registry.url}', username: u, password: '${{REG_PW}}'}}"
    for registry in (wrong, auth_registry.url):
        path = write_config(RULE, header=_header(_source("shop.x", registry)))
        with (
            load_bridge(path, {"REG_PW": "not-it-S3cr3t"}) as loaded,
            pytest.raises(SchemaRegistryUnavailable) as caught,
        ):
            _decode_one(loaded, auth_registry, "shop.x")
        assert "HTTP 401" in str(caught.value)
        assert "S3cr3t" not in str(caught.value)
    assert auth_registry.unauthorized == 2


def test_a_literal_registry_password_gets_the_warning(write_config: WriteConfig) -> None:
    registry = "{url: 'http://127.0.0.1:1', username: u, password: literal-S3cr3t}"
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with load_bridge(path, {}) as loaded:
        [warning] = loaded.warnings
    assert "sources[1].schema_registry.password is written in the file" in warning.message
    assert "S3cr3t" not in str(warning)
    assert warning.line == HEADER.split("  - topic: shop.shipments")[0].count("\n") + 3


@pytest.mark.parametrize(
    ("registry", "wanted"),
    [
        ("{url: 'http://h', username: u}", "must be given together"),
        ("{url: 'http://h', password_file: p}", "must be given together"),
        ("{url: 'http://h', username: u, username_file: f, password: p}", "not both"),
        ("{url: 'http://h', username: u, password_file: missing}", "cannot read password_file"),
        ("{username: u, password: p}", "missing required key"),
        ("{url: 'ftp://h'}", "schema_registry must be an http:// or https:// URL"),
        ("{url: 'http://h', tls: {ca_file: missing.pem}}", "cannot read tls.ca_file"),
        ("{url: 'http://h', tls: {cert_file: c.pem}}", "must be given together"),
        ("{url: 'http://h', token: x}", "unknown key 'token'"),
    ],
)
def test_bad_registry_settings_are_problems_at_their_line(
    write_config: WriteConfig, registry: str, wanted: str
) -> None:
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with pytest.raises(ConfigError) as caught:
        load_bridge(path, {})
    messages = [str(problem) for problem in caught.value.problems]
    assert any(wanted in message for message in messages), messages
    line = HEADER.split("  - topic: shop.shipments")[0].count("\n") + 3
    assert all(problem.line == line for problem in caught.value.problems), messages


def test_one_client_per_registry_connection_and_close_is_idempotent(
    write_config: WriteConfig, schema_registry: TestSchemaRegistry
) -> None:
    url = schema_registry.url
    sources = (
        _source("shop.a", url),
        _source("shop.b", f"{{url: '{url}'}}"),
        _source("shop.c", f"{{url: '{url}', username: u, password: '${{P}}'}}"),
    )
    path = write_config(RULE, header=_header(*sources))
    loaded = load_bridge(path, {"P": "p"})
    assert len(loaded.registries) == 2  # a and b share one; c logs in differently
    a, b, c = (loaded.decoders[topic] for topic in ("shop.a", "shop.b", "shop.c"))
    assert a.registry is b.registry  # type: ignore[attr-defined]
    assert a.registry is not c.registry  # type: ignore[attr-defined]
    assert _decode_one(loaded, schema_registry, "shop.a") == {"id": "x-1"}
    loaded.close()
    loaded.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.registry.schema(4242)  # type: ignore[attr-defined]  # not cached: would fetch


def test_a_context_manager_closes_the_clients(write_config: WriteConfig) -> None:
    path = write_config(RULE, header=_header(_source("shop.x", "http://127.0.0.1:1")))
    with load_bridge(path, {}) as loaded:
        [client] = loaded.registries
    assert client._closed


# ----------------------------------------------------------------------------- TLS


def _openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True)


def _certificate(name: str, subject: str, cwd: Path, extensions: str = "") -> None:
    """A key and a certificate for ``name``, signed by the test CA in ``cwd``."""
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=cwd,
    )
    (cwd / f"{name}.ext").write_text(extensions or "basicConstraints=CA:FALSE\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.crt",
        "-extfile",
        f"{name}.ext",
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    folder = tmp_path_factory.mktemp("tls")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=vibes-bridge test CA",
        cwd=folder,
    )
    _certificate("server", "/CN=127.0.0.1", folder, "subjectAltName=IP:127.0.0.1\n")
    _certificate("client", "/CN=bridge", folder)
    return folder


@pytest.fixture
def tls_registry(certificates: Path) -> Iterator[TestSchemaRegistry]:
    """A registry on HTTPS that requires a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certificates / "ca.crt")
    context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
    context.verify_mode = ssl.CERT_REQUIRED
    with running_schema_registry(tls=context) as registry:
        yield registry


def test_a_registry_over_tls_with_a_client_certificate(
    write_config: WriteConfig, tls_registry: TestSchemaRegistry, certificates: Path
) -> None:
    tls = f"{{ca_file: {certificates}/ca.crt, cert_file: client.crt, key_file: client.key}}"
    shutil.copy(certificates / "client.crt", write_config(RULE).parent / "client.crt")
    shutil.copy(certificates / "client.key", write_config(RULE).parent / "client.key")
    registry = f"{{url: '{tls_registry.url}', tls: {tls}}}"
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with load_bridge(path, {}) as loaded:
        assert _decode_one(loaded, tls_registry, "shop.x") == {"id": "x-1"}


@pytest.mark.parametrize("tls", ["{ca_file: CA}", None])
def test_without_the_client_certificate_or_the_ca_the_registry_is_unavailable(
    write_config: WriteConfig, tls_registry: TestSchemaRegistry, certificates: Path, tls: str | None
) -> None:
    registry = tls_registry.url
    if tls is not None:
        registry = (
            f"{{url: '{tls_registry.url}', tls: {tls.replace('CA', str(certificates / 'ca.crt'))}}}"
        )
    path = write_config(RULE, header=_header(_source("shop.x", registry)))
    with load_bridge(path, {}) as loaded, pytest.raises(SchemaRegistryUnavailable):
        _decode_one(loaded, tls_registry, "shop.x")


def test_an_unusable_certificate_file_is_a_problem(
    write_config: WriteConfig, certificates: Path
) -> None:
    folder = write_config(RULE).parent
    (folder / "garbage.pem").write_text("not a certificate\n")
    shutil.copy(certificates / "client.key", folder / "client.key")
    for tls, wanted in [
        ("{ca_file: garbage.pem}", "cannot use tls.ca_file"),
        ("{cert_file: garbage.pem, key_file: client.key}", "cannot use tls.cert_file"),
    ]:
        registry = f"{{url: 'https://127.0.0.1:1', tls: {tls}}}"
        path = write_config(RULE, header=_header(_source("shop.x", registry)))
        with pytest.raises(ConfigError) as caught:
            load_bridge(path, {})
        [problem] = caught.value.problems
        assert wanted in problem.message
        assert "not a certificate" not in problem.message


def test_vibes_tls_files_are_checked_when_loading(tmp_path: Path) -> None:
    """vibes.tls becomes the delivery client's context at load time, or a FILE:LINE problem."""
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate")
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "version: 1\n"
        "vibes:\n"
        "  company_key: acme\n"
        "  username: u\n"
        "  password: ${P:-p}\n"
        "  tls:\n"
        f"    ca_file: {bad_ca}\n"
        "sources: [{topic: t}]\n"
        "rules: [{name: r, topic: t, event_type: e, recipient: {external_person_id: id}}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_bridge(config)
    assert any("ca_file" in str(problem) for problem in caught.value.problems)
    assert load_bridge(_without_tls(config)).vibes_tls is None


def _without_tls(config: Path) -> Path:
    lines = [
        line
        for line in config.read_text().splitlines()
        if "tls" not in line and "ca_file" not in line
    ]
    config.write_text("\n".join(lines) + "\n")
    return config
