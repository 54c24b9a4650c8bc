"""Live reload of the configuration in `vibes-bridge run`: SIGHUP, or the file changing.

In sidecar mode a restart of the bridge restarts the pod of the service it sits
next to, so a new mapping must apply without one. A reload loads and checks the
whole file exactly as start-up does (``load_bridge``); a file with problems
changes nothing, logs each problem once and is counted. A valid file's rules
and decoders are handed to the consumer thread, which switches between records:
events already mapped finish as they are.

Every top-level section is classified in :data:`LIVE_KEYS`: what it lists applies
live, every other change is named in ONE "needs a restart" line (names only,
never values) and the running value stays in force. docs/operations.md holds the
same table; a test keeps them equal.

The watcher watches the file and the files it names (secrets, TLS files, schemas)
through their directories, because a Kubernetes ConfigMap volume updates by
swapping a ``..data`` symlink, which never touches the file's own inode; events
for anything else in those directories (a log file written next to the
configuration) are dropped before they cost a read or a log line.

Loading runs on a daemon thread of its own, not the event loop's executor: the
executor is joined when the loop ends, so a load stuck on a slow disk would hold
up the shutdown. A load that finishes after nobody waits for it is closed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from watchfiles import Change, awatch

from bridge.codecs import Decoder
from bridge.codecs.registry import SchemaRegistryClient
from bridge.config import BridgeConfig, resolve_path
from bridge.config.files import read_regular
from bridge.config.model import CallbackSettings, TlsSettings
from bridge.errors import ConfigError
from bridge.loading import LoadedBridge, load_bridge
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics
from bridge.service.blocking import call_blocking

log = logging.getLogger(__name__)
_WATCH_STEP_MS: Final = 500


EVERY_KEY: Final = frozenset({"*"})
NO_KEY: Final = frozenset[str]()
# Each top-level section and the keys of it that apply live; any other change needs
# a restart. Restart-only settings shape what is built once at start-up: the Kafka
# clients and group, the listeners, the HTTP client to Vibes (URL, credentials, TLS,
# timeout; *_file credentials are re-read on 401/403 anyway), delivery's limits, the
# fleet link, and the subscription (the set of source topics).
LIVE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "version": EVERY_KEY,
    "kafka": NO_KEY,
    # max_body_bytes is compiled into the rules' engine, which a reload replaces.
    "vibes": frozenset({"requests_per_second", "max_body_bytes"}),
    "delivery": NO_KEY,
    "management": NO_KEY,
    "dead_letter": NO_KEY,
    "receipts": NO_KEY,
    # Who may call the receiver: a narrowed allow-list must take effect at once.
    "callbacks": frozenset({"allow_from", "trusted_proxies"}),
    "fleet": NO_KEY,
    # The tracer provider and its exporter are built once at start.
    "tracing": NO_KEY,
    # Each source's decoding; "topic" (the set of topics subscribed to) needs a restart.
    "sources": frozenset({"format", "schema", "schema_registry", "message", "validate"}),
    "rules": EVERY_KEY,
}
# The one thing of the ConfigMap volume that changes on an update.
_CONFIGMAP_LINK: Final = "..data"


def file_sha256(path: Path) -> str:
    """The hash of the file's bytes (what ``vibes_bridge_config_info`` shows, never the content).

    Refuses a path that is not a regular file, without blocking on it (a FIFO).
    """
    return hashlib.sha256(read_regular(path)).hexdigest()


def restart_needed(running: BridgeConfig, new: BridgeConfig) -> list[str]:
    """The names of changed settings only a restart applies (pure: compared on the models)."""
    found: list[str] = []
    for section, live in LIVE_KEYS.items():
        if live is EVERY_KEY:
            continue
        if section == "sources":
            if _topics(running) != _topics(new):
                found.append("sources[].topic")
            continue
        old_value, new_value = getattr(running, section), getattr(new, section)
        if (old_value is None) != (new_value is None):
            found.append(section)  # a section added or removed (callbacks:)
        elif old_value is not None:
            found.extend(
                f"{section}.{key}" for key in _changed_keys(old_value, new_value) if key not in live
            )
    return found


def _changed_keys(old: Any, new: Any) -> list[str]:
    before, after = _dump(old), _dump(new)
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def _dump(model: Any) -> dict[str, Any]:
    # Python mode keeps SecretStr objects, which compare by value and never print it.
    dumped: dict[str, Any] = model.model_dump(mode="python")
    return dumped


def _topics(config: BridgeConfig) -> frozenset[str]:
    return frozenset(source.topic for source in config.sources)


def live_decoders(running: Mapping[str, Decoder], new: Mapping[str, Decoder]) -> dict[str, Decoder]:
    """The new file's decoders, plus the running ones of topics the bridge still consumes.

    A topic dropped from the file stays subscribed until a restart; its records
    keep decoding (no rule reads them now, so they are skipped and counted).
    """
    kept = {topic: decoder for topic, decoder in running.items() if topic not in new}
    return {**kept, **new}


def referenced_files(path: Path, settings: BridgeConfig) -> set[Path]:
    """Every file the configuration names (secrets, TLS files, schemas), as absolute paths."""
    names: list[str | None] = [settings.vibes.username_file, settings.vibes.password_file]
    names += _tls_files(settings.vibes.tls)
    for source in settings.sources:
        names.append(source.schema_file)
        registry = source.schema_registry
        if registry is not None:
            names += [registry.username_file, registry.password_file, *_tls_files(registry.tls)]
    callbacks = settings.callbacks
    if callbacks is not None:
        names.append(callbacks.token_file)
        if callbacks.tls is not None:
            names += [callbacks.tls.cert_file, callbacks.tls.key_file]
    return {resolve_path(path, name).absolute() for name in names if name}


def _tls_files(tls: TlsSettings | None) -> list[str | None]:
    return [] if tls is None else [tls.ca_file, tls.cert_file, tls.key_file]


class WatchedPaths:
    """Which change events matter: the watched files (as linked and as resolved) and ``..data``.

    A ``watch_filter`` for watchfiles: it runs before watchfiles logs a change, so
    other files in the same directories cause neither a reload nor a log line.
    """

    def __init__(self, files: Iterable[Path]) -> None:
        self.files = frozenset(
            variant for file in files for variant in (file.absolute(), file.resolve())
        )
        self.directories = frozenset(file.parent for file in self.files)

    def __call__(self, _change: Change, name: str) -> bool:
        path = Path(name)
        if path in self.files:
            return True
        # The kubelet's swap renames a new ..data link over the old one.
        return path.name == _CONFIGMAP_LINK and path.parent in self.directories

    def config_changed(self, config: Path, changes: Iterable[tuple[Change, str]]) -> bool:
        """Whether an event is the configuration file's own (or a ConfigMap swap)."""
        own = {config.absolute(), config.resolve()}
        return any(
            Path(name) in own or Path(name).name == _CONFIGMAP_LINK for _change, name in changes
        )


class RulesTarget:
    """What a reload changes in the running service (the runner provides it)."""

    def __init__(
        self,
        use_rules: Callable[[dict[str, Decoder], Engine, Callable[[], None]], None],
        set_rate: Callable[[str, float], None],
        use_callbacks: Callable[[CallbackSettings], None] | None = None,
    ) -> None:
        self.use_rules = use_rules
        self.set_rate = set_rate
        self.use_callbacks = use_callbacks


@dataclass(slots=True)
class _Attempt:
    sha256: str
    ok: bool


class ConfigReloader:
    """Reloads on request (SIGHUP, the watcher) one at a time; keeps the running LoadedBridge.

    ``current`` holds every resource in force (its registries include those the
    decoders of dropped topics still use); the runner closes it at the end.
    """

    def __init__(
        self,
        loaded: LoadedBridge,
        target: RulesTarget,
        metrics: BridgeMetrics,
        *,
        loader: Callable[[Path], LoadedBridge] = load_bridge,
    ) -> None:
        self.current = loaded
        self._target = target
        self._metrics = metrics
        self._loader = loader
        self._requested = asyncio.Event()
        self._rewatch = asyncio.Event()
        self._watching: frozenset[Path] = frozenset()
        self._forced = False
        self._last: _Attempt | None = None
        self._sha256 = _hash_or_empty(loaded.path)
        metrics.config.in_force(self._sha256)

    def request(self, *, force: bool) -> None:
        """Ask for a reload; ``force`` (SIGHUP) reloads even an unchanged file."""
        self._forced = self._forced or force
        self._requested.set()

    async def serve(self) -> None:
        """Reload whenever asked, until cancelled."""
        while True:
            await self._requested.wait()
            self._requested.clear()
            forced, self._forced = self._forced, False
            await self.reload(force=forced)

    def watched(self) -> WatchedPaths:
        """The files a change of which reloads: the configuration and what it names."""
        config = self.current.path
        return WatchedPaths({config, *referenced_files(config, self.current.settings)})

    async def watch(self) -> None:
        """Ask for a reload when a watched file changes, until cancelled.

        A change to a file the configuration names (not the file itself) forces the
        reload: the file's own hash has not changed, what it reads has.
        """
        try:
            while True:
                self._rewatch.clear()
                paths = self.watched()
                self._watching = paths.files
                directories = [d for d in paths.directories if d.is_dir()]
                async for changes in awatch(
                    *directories,
                    watch_filter=paths,
                    recursive=False,
                    debounce=200,
                    # watchfiles' Rust loop wakes (and takes the GIL) every ``step``:
                    # 50 ms was 20 wake-ups a second on an idle bridge; a change is
                    # picked up within about half a second instead.
                    step=_WATCH_STEP_MS,
                    stop_event=self._rewatch,
                ):
                    config_only = paths.config_changed(self.current.path, changes)
                    self.request(force=not config_only)
        except (OSError, RuntimeError) as exc:  # inotify limits, a directory gone
            log.warning(
                "cannot watch the configuration file; SIGHUP still reloads it",
                extra={"error": type(exc).__name__},
            )

    async def reload(self, *, force: bool) -> bool:
        """Load the file and apply it; True when it was applied (or already running)."""
        path = self.current.path
        try:
            sha256 = await call_blocking(file_sha256, path)
        except OSError as exc:
            return self._failed("", [f"{path}: cannot read the file ({exc.strerror})"])
        if not force and (sha256 == self._sha256 or self._same_as_last(sha256)):
            return sha256 == self._sha256
        try:
            new = await call_blocking(self._loader, path, abandoned=_close_loaded)
        except ConfigError as exc:
            return self._failed(sha256, [str(problem) for problem in exc.problems])
        self._apply(new, sha256)
        return True

    def _same_as_last(self, sha256: str) -> bool:
        return self._last is not None and self._last.sha256 == sha256

    def _failed(self, sha256: str, problems: list[str]) -> bool:
        self._metrics.config.reload_failed()
        if self._same_as_last(sha256) and self._last is not None and not self._last.ok:
            log.error(
                "configuration still invalid; running on the previous one (problems logged before)",
                extra={"sha256": sha256, "problems": len(problems)},
            )
        else:
            for problem in problems:
                log.error("configuration reload refused: %s", problem, extra={"sha256": sha256})
            log.error(
                "configuration not reloaded; running on the previous one",
                extra={"sha256": sha256, "problems": len(problems)},
            )
        self._last = _Attempt(sha256, ok=False)
        return False

    def _apply(self, new: LoadedBridge, sha256: str) -> None:
        running = self.current
        needs_restart = restart_needed(running.settings, new.settings)
        if needs_restart:
            log.warning(
                "configuration change needs a restart to apply; the rest is applied: %s",
                ", ".join(needs_restart),
                extra={"settings": needs_restart},
            )
        decoders = live_decoders(running.decoders, new.decoders)
        registries = _registries_in_use(decoders, new.registries)
        retired = [r for r in running.registries if r not in registries]
        # Unused new clients (a shared one replaced) close with the old ones.
        retired += [r for r in new.registries if r not in registries]
        self._target.use_rules(decoders, new.engine, lambda: _close(retired))
        adopted = _adopt(running, new, decoders, registries)
        # From what is in force: a company's own rate (vibes.companies) needs a restart.
        vibes = adopted.settings.vibes
        for company_key in _company_keys(adopted.settings):
            self._target.set_rate(company_key, vibes.requests_per_second_for(company_key))
        self._use_callbacks(adopted.settings.callbacks)
        self.current = adopted
        if self.watched().files != self._watching:  # a new secret file, a ConfigMap swap
            self._rewatch.set()
        self._sha256 = sha256
        self._metrics.config.in_force(sha256)
        self._metrics.config.reload_succeeded()
        self._last = _Attempt(sha256, ok=True)
        log.info(
            "configuration reloaded",
            extra={"sha256": sha256, "rules": len(new.settings.rules)},
        )

    def _use_callbacks(self, settings: CallbackSettings | None) -> None:
        if settings is not None and self._target.use_callbacks is not None:
            self._target.use_callbacks(settings)


def _adopt(
    running: LoadedBridge,
    new: LoadedBridge,
    decoders: dict[str, Decoder],
    registries: tuple[SchemaRegistryClient, ...],
) -> LoadedBridge:
    """The settings now in force: the live keys of the new file, the running rest.

    Keeping the running settings means a later reload compares against what runs,
    so a restart-only change is reported again until a restart applies it. What a
    restart-only setting built (TLS contexts, the callback token) stays the running one.
    """
    old, fresh = running.settings, new.settings
    update: dict[str, Any] = {}
    for section, live in LIVE_KEYS.items():
        if live is EVERY_KEY:
            update[section] = getattr(fresh, section)
        elif section == "sources":
            if _topics(old) == _topics(fresh):
                update[section] = fresh.sources
        elif live:
            update[section] = _live_part(getattr(old, section), getattr(fresh, section), live)
    return LoadedBridge(
        running.path,
        old.model_copy(update=update),
        running.credentials,
        decoders,
        new.engine,
        new.warnings,
        registries,
        running.vibes_tls,
        running.callback_token,
        running.callback_tls,
        running.company_tls,
    )


def _live_part(old: Any, fresh: Any, live: frozenset[str]) -> Any:
    """``old`` with the live keys of ``fresh``; ``old`` when either is absent."""
    if old is None or fresh is None:
        return old
    return old.model_copy(update={key: getattr(fresh, key) for key in live})


def _registries_in_use(
    decoders: Mapping[str, Decoder], new: tuple[SchemaRegistryClient, ...]
) -> tuple[SchemaRegistryClient, ...]:
    """The registry clients the decoders in force use, new ones first."""
    used = [getattr(decoder, "registry", None) for decoder in decoders.values()]
    in_use = [client for client in used if isinstance(client, SchemaRegistryClient)]
    return tuple(dict.fromkeys([*(c for c in new if c in in_use), *in_use]))


def _company_keys(config: BridgeConfig) -> set[str]:
    keys = {config.vibes.company_key}
    keys.update(rule.company_key for rule in config.rules if rule.company_key is not None)
    return keys


def _close(registries: list[SchemaRegistryClient]) -> None:
    for registry in registries:
        registry.close()


def _close_loaded(loaded: LoadedBridge) -> None:
    loaded.close()


def _hash_or_empty(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""
