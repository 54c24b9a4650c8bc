"""Load a configuration file into everything a command needs, or fail with every problem.

This is the one place where the settings (``bridge.config``) and the compiled
rules (``bridge.mapping.compiler``) meet, so both are checked on every load and
their problems are reported together, in file order.

What is opened here is closed by :meth:`LoadedBridge.close`: one Schema Registry
client (an HTTP connection pool) per distinct registry connection, shared by every
source that names the same URL, credentials and TLS settings.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import SecretStr

from bridge.codecs import Decoder, make_decoder
from bridge.codecs.registry import SchemaRegistryClient
from bridge.config import (
    BridgeConfig,
    Credentials,
    SourceDocument,
    check_settings,
    load_yaml,
    read_credentials,
)
from bridge.config.loader import read_callback_token, read_secret_pair, secret_warnings
from bridge.config.model import SchemaRegistrySettings
from bridge.config.tls import server_tls_context, tls_context
from bridge.errors import ConfigError, Problem
from bridge.mapping.compiler import compile_rules
from bridge.mapping.engine import Engine

CONFIG_ENV = "BRIDGE_CONFIG"


@dataclass(frozen=True, slots=True)
class LoadedBridge:
    """A checked configuration: settings, credentials, decoders, the engine, and warnings.

    Holds open Schema Registry clients: call :meth:`close` (idempotent) or use it as a
    context manager.
    """

    path: Path
    settings: BridgeConfig
    credentials: Credentials
    decoders: dict[str, Decoder]  # source topic to its codec
    engine: Engine
    warnings: tuple[Problem, ...]
    registries: tuple[SchemaRegistryClient, ...] = ()
    # vibes.tls as a context, built while loading so bad files are FILE:LINE problems.
    vibes_tls: ssl.SSLContext | None = None
    # The callback receiver's path token and server TLS (None without callbacks:).
    callback_token: SecretStr | None = field(default=None, repr=False)
    callback_tls: ssl.SSLContext | None = None
    # The companies with a tls: of their own (vibes.companies.<key>.tls), as contexts.
    company_tls: Mapping[str, ssl.SSLContext] = field(default_factory=dict)

    def close(self) -> None:
        """Close every Schema Registry client; safe to call more than once."""
        for registry in self.registries:
            registry.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class _RegistryConnection:
    """What a source needs to reach its registry; equal connections share one client."""

    url: str
    auth: tuple[str, str] | None = field(repr=False)
    tls_files: tuple[str | None, ...]


def load_bridge(path: Path, environ: Mapping[str, str] | None = None) -> LoadedBridge:
    """Load and check ``path``; raise :class:`ConfigError` listing every problem."""
    document = load_yaml(path, os.environ if environ is None else environ)
    warnings = tuple(secret_warnings(document))
    settings, problems = check_settings(document)
    credentials = None
    connections: dict[str, tuple[_RegistryConnection, ssl.SSLContext | None]] = {}
    vibes_tls: ssl.SSLContext | None = None
    callback_token: SecretStr | None = None
    callback_tls: ssl.SSLContext | None = None
    company_tls: dict[str, ssl.SSLContext] = {}
    if settings is not None:
        credentials, credential_problems = read_credentials(settings, document)
        problems += credential_problems
        connections, registry_problems = _registry_connections(settings, document)
        problems += registry_problems
        if settings.vibes.tls is not None:
            vibes_tls, tls_problems = tls_context(settings.vibes.tls, document, ("vibes", "tls"))
            problems += tls_problems
        company_tls, company_tls_problems = _company_tls(settings, document)
        problems += company_tls_problems
        callback_token, token_problems = read_callback_token(settings, document)
        problems += token_problems
        callback_tls, callback_tls_problems = _callback_tls(settings, document)
        problems += callback_tls_problems
    compiled, rule_problems = compile_rules(document)
    problems += rule_problems
    if problems or settings is None or credentials is None or compiled is None:
        raise ConfigError(_in_file_order(problems), warnings)
    registries = _open_registries(connections)
    try:
        decoders = _decoders(settings, compiled.schemas, registries, document)
    except BaseException:
        for registry in set(registries.values()):
            registry.close()
        raise
    return LoadedBridge(
        path,
        settings,
        credentials,
        decoders,
        compiled.engine,
        tuple(_in_file_order([*warnings, *compiled.warnings])),
        tuple(dict.fromkeys(registries.values())),
        vibes_tls,
        callback_token,
        callback_tls,
        company_tls,
    )


def _company_tls(
    settings: BridgeConfig, document: SourceDocument
) -> tuple[dict[str, ssl.SSLContext], list[Problem]]:
    """A context per company with a ``tls:`` of its own (files it leaves out: vibes.tls's)."""
    contexts: dict[str, ssl.SSLContext] = {}
    problems: list[Problem] = []
    for key, company in settings.vibes.companies.items():
        tls = settings.vibes.tls_for(key)
        if company.tls is None or tls is None:
            continue
        context, tls_problems = tls_context(tls, document, ("vibes", "companies", key, "tls"))
        problems += tls_problems
        if context is not None:
            contexts[key] = context
    return contexts, problems


def _callback_tls(
    settings: BridgeConfig, document: SourceDocument
) -> tuple[ssl.SSLContext | None, list[Problem]]:
    tls = None if settings.callbacks is None else settings.callbacks.tls
    if tls is None:
        return None, []
    return server_tls_context(tls, document, ("callbacks", "tls"))


def _registry_connections(
    settings: BridgeConfig, document: SourceDocument
) -> tuple[dict[str, tuple[_RegistryConnection, ssl.SSLContext | None]], list[Problem]]:
    """Each confluent-* source's connection (topic to it), with the secrets read."""
    connections: dict[str, tuple[_RegistryConnection, ssl.SSLContext | None]] = {}
    problems: list[Problem] = []
    for index, source in enumerate(settings.sources):
        registry = source.schema_registry
        if registry is None:
            continue
        where = ("sources", index, "schema_registry")
        connection = _connection(registry, where, document, problems)
        if connection is not None:
            connections[source.topic] = connection
    return connections, problems


def _connection(
    registry: SchemaRegistrySettings,
    where: tuple[str | int, ...],
    document: SourceDocument,
    problems: list[Problem],
) -> tuple[_RegistryConnection, ssl.SSLContext | None] | None:
    pair, pair_problems = read_secret_pair(registry, where, document)
    problems += pair_problems
    context = None
    tls_files: tuple[str | None, ...] = ()
    if registry.tls is not None:
        context, tls_problems = tls_context(registry.tls, document, (*where, "tls"))
        problems += tls_problems
        tls_files = (registry.tls.ca_file, registry.tls.cert_file, registry.tls.key_file)
    if pair_problems or (registry.tls is not None and context is None):
        return None
    auth = None
    if pair is not None:
        auth = (pair.username.get_secret_value(), pair.password.get_secret_value())
    return _RegistryConnection(registry.url, auth, tls_files), context


def _open_registries(
    connections: dict[str, tuple[_RegistryConnection, ssl.SSLContext | None]],
) -> dict[str, SchemaRegistryClient]:
    """Topic to client; sources with equal connections get the same client."""
    clients: dict[_RegistryConnection, SchemaRegistryClient] = {}
    by_topic: dict[str, SchemaRegistryClient] = {}
    for topic, (connection, context) in connections.items():
        client = clients.get(connection)
        if client is None:
            client = SchemaRegistryClient(connection.url, auth=connection.auth, tls=context)
            clients[connection] = client
        by_topic[topic] = client
    return by_topic


def _decoders(
    settings: BridgeConfig,
    schemas: dict[str, Any],
    registries: dict[str, SchemaRegistryClient],
    document: SourceDocument,
) -> dict[str, Decoder]:
    """Each source's codec, from the schemas the compiler already parsed."""
    decoders: dict[str, Decoder] = {}
    problems = []
    for index, source in enumerate(settings.sources):
        try:
            decoders[source.topic] = make_decoder(
                source.format,
                schema=schemas.get(source.topic),
                validate=source.validate_values,
                registry=registries.get(source.topic),
            )
        except ValueError as exc:  # the models check the same; this keeps a gap from crashing
            problems.append(document.problem(("sources", index), str(exc)))
    if problems:
        raise ConfigError(problems)
    return decoders


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda problem: problem.line or 0)
