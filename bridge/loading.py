"""Load a configuration file into everything a command needs, or fail with every problem.

This is the one place where the settings (``bridge.config``) and the compiled
rules (``bridge.mapping.compiler``) meet, so both are checked on every load and
their problems are reported together, in file order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bridge.codecs import AvroSchema, Decoder, make_decoder
from bridge.config import (
    BridgeConfig,
    Credentials,
    SourceDocument,
    check_settings,
    load_yaml,
    read_credentials,
)
from bridge.config.loader import secret_warnings
from bridge.errors import ConfigError, Problem
from bridge.mapping.compiler import compile_rules
from bridge.mapping.engine import Engine

CONFIG_ENV = "BRIDGE_CONFIG"


@dataclass(frozen=True, slots=True)
class LoadedBridge:
    """A checked configuration: settings, credentials, decoders, the engine, and warnings."""

    path: Path
    settings: BridgeConfig
    credentials: Credentials
    decoders: dict[str, Decoder]  # source topic to its codec
    engine: Engine
    warnings: tuple[Problem, ...]

    def close(self) -> None:
        """Release what loading opened (the Schema Registry clients of the decoders)."""
        for decoder in self.decoders.values():
            close = getattr(decoder, "close", None)
            if callable(close):
                close()


def load_bridge(path: Path, environ: Mapping[str, str] | None = None) -> LoadedBridge:
    """Load and check ``path``; raise :class:`ConfigError` listing every problem."""
    document = load_yaml(path, os.environ if environ is None else environ)
    settings, problems = check_settings(document)
    credentials = None
    if settings is not None:
        credentials, credential_problems = read_credentials(settings, document)
        problems += credential_problems
    compiled, rule_problems = compile_rules(document)
    problems += rule_problems
    if problems or settings is None or credentials is None or compiled is None:
        raise ConfigError(_in_file_order(problems))
    decoders = _decoders(settings, compiled.schemas, document)
    return LoadedBridge(
        path, settings, credentials, decoders, compiled.engine, tuple(secret_warnings(document))
    )


def _decoders(
    settings: BridgeConfig, schemas: dict[str, AvroSchema], document: SourceDocument
) -> dict[str, Decoder]:
    """Each source's codec, from the schemas the compiler already parsed."""
    decoders: dict[str, Decoder] = {}
    problems = []
    for index, source in enumerate(settings.sources):
        try:
            decoders[source.topic] = make_decoder(
                source.format,
                schema=schemas.get(source.topic),
                registry_url=source.schema_registry,
            )
        except ValueError as exc:  # the models check the same; this keeps a gap from crashing
            problems.append(document.problem(("sources", index), str(exc)))
    if problems:
        raise ConfigError(problems)
    return decoders


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda problem: problem.line or 0)
