"""Load the configuration file: YAML with lines, environment, pydantic models, secret files.

Rules are compiled separately (``bridge.mapping.compiler``); ``bridge.loading``
joins both so that every problem in a file is reported in one go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from bridge.config.files import read_regular_text
from bridge.config.model import (
    BridgeConfig,
    CompanySettings,
    SchemaRegistrySettings,
    VibesSettings,
)
from bridge.config.yaml_source import KeyPath, SourceDocument
from bridge.errors import Problem


@dataclass(frozen=True, slots=True)
class Credentials:
    """A Basic-auth pair (Vibes, a Schema Registry), read from the file, the environment
    or secret files."""

    username: SecretStr
    password: SecretStr


def check_settings(document: SourceDocument) -> tuple[BridgeConfig | None, list[Problem]]:
    """Validate the whole document against the models; every problem with its line."""
    if not isinstance(document.data, dict):
        return None, [document.problem((), "the file must hold a YAML mapping (version: 1, ...)")]
    # Top-level "x-..." keys are ignored, as in Compose files: a home for YAML anchors.
    data = {key: value for key, value in document.data.items() if not key.startswith("x-")}
    try:
        settings = BridgeConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_pydantic_problem(document, error) for error in exc.errors()]
        return None, list(dict.fromkeys(problems))
    return settings, [
        *_listener_clash(settings, document),
        *_receipts_clash(settings, document),
        *_parking_clash(settings, document),
    ]


# Addresses that listen on every interface, so they overlap any other host.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})
# "localhost" binds both loopback addresses.
_LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1"})


def _listener_clash(settings: BridgeConfig, document: SourceDocument) -> list[Problem]:
    """``callbacks.port`` equal to ``management.port`` on overlapping hosts: one cannot bind.

    Refused here, at its line, rather than as a bind error when ``run`` starts.
    Port 0 (any free port) never clashes.
    """
    callbacks, management = settings.callbacks, settings.management
    if callbacks is None or callbacks.port == 0 or callbacks.port != management.port:
        return []
    if not _hosts_overlap(callbacks.host, management.host):
        return []
    message = (
        f"callbacks.port: {callbacks.port} is also management.port; "
        "the two listeners need different ports"
    )
    return [document.problem(("callbacks", "port"), message)]


def _receipts_clash(settings: BridgeConfig, document: SourceDocument) -> list[Problem]:
    """``receipts.topic`` naming a topic the bridge reads or writes for something else:
    receipts would be consumed as orders, or mixed with dead letters, callbacks or budgets."""
    if settings.receipts is None:
        return []
    topic = settings.receipts.topic
    others = [
        ("dead_letter.topic", settings.dead_letter.topic),
        ("fleet.topic", settings.fleet.topic),
        *([("callbacks.topic", settings.callbacks.topic)] if settings.callbacks else []),
        *(("a source's topic", source.topic) for source in settings.sources),
    ]
    clash = next((name for name, other in others if other == topic), None)
    if clash is None:
        return []
    message = f"receipts.topic: {topic} is also {clash}; receipts need a topic of their own"
    return [document.problem(("receipts", "topic"), message)]


def _parking_clash(settings: BridgeConfig, document: SourceDocument) -> list[Problem]:
    """``delivery.parking.topic`` naming a topic the bridge reads or writes for something
    else: parked events would be consumed as orders, or mixed with other records."""
    parking = settings.delivery.parking
    if parking.enabled is False:  # a topic named but switched off explicitly is never used
        return []
    others = [
        ("dead_letter.topic", settings.dead_letter.topic),
        ("fleet.topic", settings.fleet.topic),
        *([("receipts.topic", settings.receipts.topic)] if settings.receipts else []),
        *([("callbacks.topic", settings.callbacks.topic)] if settings.callbacks else []),
        *(("a source's topic", source.topic) for source in settings.sources),
    ]
    clash = next((name for name, other in others if other == parking.topic), None)
    if clash is None:
        return []
    message = (
        f"delivery.parking.topic: {parking.topic} is also {clash}; "
        "parked events need a topic of their own"
    )
    return [document.problem(("delivery", "parking", "topic"), message)]


def _hosts_overlap(first: str, second: str) -> bool:
    a, b = first.strip().lower(), second.strip().lower()
    if a == b or a in _WILDCARD_HOSTS or b in _WILDCARD_HOSTS:
        return True
    return "localhost" in (a, b) and a in _LOCALHOST and b in _LOCALHOST


def read_credentials(
    settings: BridgeConfig, document: SourceDocument
) -> tuple[Credentials | None, list[Problem]]:
    """The credentials of ``vibes.company_key``, every other company's pair checked too.

    Each pair is read (so an unreadable secret file is a problem at its key), and
    every company key in use (``vibes.company_key`` and each rule's ``company_key``)
    must have one: its own under ``vibes.companies`` or the ``vibes`` section's.
    """
    vibes = settings.vibes
    problems: list[Problem] = []
    pairs: dict[str | None, Credentials] = {}
    places: list[tuple[str | None, VibesSettings | CompanySettings, KeyPath]] = [
        (None, vibes, ("vibes",))
    ]
    places += [(key, c, ("vibes", "companies", key)) for key, c in vibes.companies.items()]
    for key, holder, where in places:
        if not holder.has_credentials:
            continue
        pair, pair_problems = read_secret_pair(holder, where, document)
        problems += pair_problems
        if pair is not None:
            pairs[key] = pair
    if problems:
        return None, problems
    problems += _keys_without_credentials(settings, document)
    default = pairs.get(vibes.company_key, pairs.get(None))
    return (None, problems) if problems else (default, [])


def _keys_without_credentials(settings: BridgeConfig, document: SourceDocument) -> list[Problem]:
    vibes = settings.vibes
    if vibes.has_credentials:
        return []  # every company without its own pair uses the section's
    in_use: list[tuple[str, KeyPath]] = [(vibes.company_key, ("vibes", "company_key"))]
    in_use += [
        (rule.company_key, ("rules", index, "company_key"))
        for index, rule in enumerate(settings.rules)
        if rule.company_key is not None
    ]
    problems = []
    for key, where in in_use:
        company = vibes.companies.get(key)
        if company is None or not company.has_credentials:
            message = (
                f"company_key {key!r} has no credentials: give vibes.companies.{key}"
                ".username and .password (or *_file), or vibes.username and vibes.password"
            )
            problems.append(document.problem(where, message))
    return list(dict.fromkeys(problems))


def read_secret_pair(
    settings: VibesSettings | CompanySettings | SchemaRegistrySettings,
    where: KeyPath,
    document: SourceDocument,
) -> tuple[Credentials | None, list[Problem]]:
    """Resolve ``username``/``password`` or their ``*_file`` forms (mounted Kubernetes secrets).

    ``None`` without problems when neither is given (optional credentials).
    """
    problems: list[Problem] = []
    values: dict[str, SecretStr] = {}
    for name in ("username", "password"):
        inline: SecretStr | None = getattr(settings, name)
        file_name: str | None = getattr(settings, f"{name}_file")
        if inline is not None:
            values[name] = inline
        elif file_name is not None:
            secret = _read_secret_file(document, (*where, f"{name}_file"), file_name, problems)
            if secret is not None:
                values[name] = secret
    if problems or len(values) < 2:  # the model accepts both or neither
        return None, problems
    return Credentials(values["username"], values["password"]), []


# A path token shorter than this could be guessed by trying.
MIN_TOKEN_LENGTH = 16


def read_callback_token(
    settings: BridgeConfig, document: SourceDocument
) -> tuple[SecretStr | None, list[Problem]]:
    """``callbacks.token`` or ``callbacks.token_file``; None when there is no receiver.

    The token is the only thing standing between the internet and the callbacks
    topic (Vibes signs nothing), so a short one is refused; the message never shows it.
    """
    callbacks = settings.callbacks
    if callbacks is None:
        return None, []
    problems: list[Problem] = []
    where: KeyPath = ("callbacks", "token")
    token = callbacks.token
    if callbacks.token_file is not None:
        where = ("callbacks", "token_file")
        token = _read_secret_file(document, where, callbacks.token_file, problems)
    if token is None:
        return None, problems
    text = token.get_secret_value()
    if len(text) < MIN_TOKEN_LENGTH or not text.isascii() or not text.isprintable():
        message = (
            f"callbacks.{where[-1]}: the token must be at least {MIN_TOKEN_LENGTH} printable "
            "ASCII characters (make one with: openssl rand -hex 24)"
        )
        return None, [document.problem(where, message)]
    return token, []


def _read_secret_file(
    document: SourceDocument, key: KeyPath, file_name: str, problems: list[Problem]
) -> SecretStr | None:
    try:
        text = read_regular_text(resolve_path(document.path, file_name))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problems.append(document.problem(key, f"cannot read {key[-1]}: {reason}"))
        return None
    return SecretStr(text.strip())


def secret_warnings(document: SourceDocument) -> list[Problem]:
    """A password written into the file itself works, but belongs in the environment.

    Read from the raw data, not the models, so the warning is given even when the
    file has errors too.
    """
    data = document.data if isinstance(document.data, dict) else {}
    vibes = data.get("vibes")
    places: list[tuple[KeyPath, Any, str]] = [(("vibes",), vibes, "VIBES_PASSWORD")]
    companies = vibes.get("companies") if isinstance(vibes, dict) else None
    for key, company in companies.items() if isinstance(companies, dict) else ():
        places.append((("vibes", "companies", key), company, "VIBES_PASSWORD"))
    sources = data.get("sources")
    for index, source in enumerate(sources if isinstance(sources, list) else []):
        registry = source.get("schema_registry") if isinstance(source, dict) else None
        places.append((("sources", index, "schema_registry"), registry, "SCHEMA_REGISTRY_PASSWORD"))
    places_by_key: list[tuple[KeyPath, Any, str]] = [
        ((*where, "password"), settings, variable) for where, settings, variable in places
    ]
    places_by_key.append((("callbacks", "token"), data.get("callbacks"), "CALLBACK_TOKEN"))
    warnings = []
    for key, settings, variable in places_by_key:
        literal = isinstance(settings, dict) and settings.get(key[-1])
        if literal and key not in document.interpolated:
            message = (
                f"warning: {_dotted(key)} is written in the file; "
                f"use ${{{variable}}} or {key[-1]}_file instead"
            )
            warnings.append(document.problem(key, message))
    return warnings


def resolve_path(config_path: Path, name: str) -> Path:
    """Paths in the file are relative to the file, not to the working directory."""
    path = Path(name)
    return path if path.is_absolute() else config_path.parent / path


def _pydantic_problem(document: SourceDocument, error: Mapping[str, Any]) -> Problem:
    loc = _document_path(document.data, error["loc"])
    where = _dotted(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}" + (f" in {_dotted(loc[:-1])}" if loc[:-1] else "")
    elif kind == "missing":
        message = f"missing required key {where}"
    else:
        text = str(error["msg"]).removeprefix("Value error, ")
        message = f"{where}: {text}" if where else text
    return document.problem(loc, message)


def _document_path(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """The part of pydantic's location that names keys of the file.

    Pydantic also puts the member of a union it tried (``dict[str,any]``) into the
    location; those steps are dropped. The last step is kept even when the file
    lacks it: it is the missing or unknown key the message is about.
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        in_file = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if in_file:
            node = node[part]
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            node = None
        else:
            continue
        path.append(part)
    return tuple(path)


def _dotted(loc: KeyPath) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
