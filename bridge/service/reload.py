"""Live reload of the configuration in `vibes-bridge run`: SIGHUP, or the file changing.

In sidecar mode a restart of the bridge restarts the pod of the service it sits
next to, so a new mapping must apply without one. A reload loads and checks the
whole file exactly as start-up does (``load_bridge``); a file with problems
changes nothing, logs each problem once and is counted. A valid file's rules
and decoders are handed to the consumer thread, which switches between records:
events already mapped finish as they are. Settings that a running process
cannot take (see :func:`restart_needed`) are logged as needing a restart, and
the rest applies.

The file is watched through its directory, not the file itself: a Kubernetes
ConfigMap volume updates by swapping a ``..data`` symlink, which never touches
the file's own inode; any change in the directory triggers a compare of the
file's hash, so unrelated changes cost one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from watchfiles import awatch

from bridge.codecs import Decoder
from bridge.config import BridgeConfig
from bridge.errors import ConfigError
from bridge.loading import LoadedBridge, load_bridge
from bridge.mapping.engine import Engine
from bridge.metrics import BridgeMetrics

log = logging.getLogger(__name__)

SUCCESS: Final = "success"
FAILURE: Final = "failure"
# Settings a running process keeps: they shape connections, the group, the
# listening port and the subscription, each built once at start-up.
_RESTART_ONLY: Final = (
    ("kafka", "the Kafka connection and group"),
    ("management", "the management address"),
    ("dead_letter", "the dead-letter topic"),
    ("delivery", "delivery limits and timeouts"),
    ("fleet", "the fleet budget's topic and timing"),
)
# vibes.* may change live only in its rate; the client (URL, credentials, TLS,
# timeout) is built once. *_file credentials are re-read by the client on 401/403.
_VIBES_LIVE: Final = frozenset({"requests_per_second"})


def file_sha256(path: Path) -> str:
    """The hash of the file's bytes (what ``vibes_bridge_config_info`` shows, never the content)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def restart_needed(running: BridgeConfig, new: BridgeConfig) -> list[str]:
    """Which changed settings only a restart applies (pure: compared on the parsed models)."""
    found = [
        f"{key} ({what})"
        for key, what in _RESTART_ONLY
        if _dump(getattr(running, key)) != _dump(getattr(new, key))
    ]
    old_vibes, new_vibes = _dump(running.vibes), _dump(new.vibes)
    changed_vibes = sorted(
        key
        for key in old_vibes.keys() | new_vibes.keys()
        if key not in _VIBES_LIVE and old_vibes.get(key) != new_vibes.get(key)
    )
    found.extend(f"vibes.{key}" for key in changed_vibes)
    if _topics(running) != _topics(new):
        found.append("sources (the set of source topics the bridge subscribes to)")
    return found


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


class RulesTarget:
    """What a reload changes in the running service (the runner provides it)."""

    def __init__(
        self,
        use_rules: Callable[[dict[str, Decoder], Engine, Callable[[], None]], None],
        set_rate: Callable[[str, float], None],
    ) -> None:
        self.use_rules = use_rules
        self.set_rate = set_rate


@dataclass(slots=True)
class _Attempt:
    sha256: str
    ok: bool


class ConfigReloader:
    """Reloads on request (SIGHUP, the watcher) one at a time; keeps the running LoadedBridge."""

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
        self._forced = False
        self._last: _Attempt | None = None
        self._retired: list[LoadedBridge] = []
        self._sha256 = _hash_or_empty(loaded.path)
        metrics.config_info.labels(self._sha256).set(1)

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

    async def watch(self) -> None:
        """Ask for a reload when anything in the file's directory changes, until cancelled."""
        path = self.current.path
        # The link's directory sees a ConfigMap swap; the target's sees an edit in place.
        directories = {path.absolute().parent, path.resolve().parent}
        try:
            async for _changes in awatch(*directories, recursive=False, debounce=200, step=50):
                self.request(force=False)
        except (OSError, RuntimeError) as exc:  # inotify limits, a directory gone
            log.warning(
                "cannot watch the configuration file; SIGHUP still reloads it",
                extra={"error": type(exc).__name__},
            )

    async def reload(self, *, force: bool) -> bool:
        """Load the file and apply it; True when it was applied (or already running)."""
        path = self.current.path
        try:
            sha256 = await asyncio.to_thread(file_sha256, path)
        except OSError as exc:
            return self._failed("", [f"{path}: cannot read the file ({exc.strerror})"])
        if not force and (sha256 == self._sha256 or self._same_as_last(sha256)):
            return sha256 == self._sha256
        try:
            new = await asyncio.to_thread(self._loader, path)
        except ConfigError as exc:
            return self._failed(sha256, [str(problem) for problem in exc.problems])
        self._apply(new, sha256)
        return True

    def _same_as_last(self, sha256: str) -> bool:
        return self._last is not None and self._last.sha256 == sha256

    def _failed(self, sha256: str, problems: list[str]) -> bool:
        self._metrics.config_reloads.labels(FAILURE).inc()
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
        for setting in restart_needed(running.settings, new.settings):
            log.warning(
                "configuration change needs a restart to apply; the rest is applied",
                extra={"setting": setting},
            )
        decoders = live_decoders(running.decoders, new.decoders)
        kept = set(map(id, decoders.values()))
        retired = [d for d in running.decoders.values() if id(d) not in kept]
        self._target.use_rules(decoders, new.engine, lambda: _close(retired))
        for company_key in _company_keys(new.settings):
            self._target.set_rate(company_key, new.settings.vibes.requests_per_second)
        self.current = _adopt(running, new, decoders)
        with contextlib.suppress(KeyError):
            self._metrics.config_info.remove(self._sha256)
        self._sha256 = sha256
        self._metrics.config_info.labels(sha256).set(1)
        self._metrics.config_reloads.labels(SUCCESS).inc()
        self._last = _Attempt(sha256, ok=True)
        log.info(
            "configuration reloaded",
            extra={"sha256": sha256, "rules": len(new.settings.rules)},
        )


def _adopt(running: LoadedBridge, new: LoadedBridge, decoders: dict[str, Decoder]) -> LoadedBridge:
    """The settings now in force: the new rules and rate, the running restart-only settings.

    Keeping the running settings means a later reload compares against what runs,
    so a restart-only change is reported again until a restart applies it.
    """
    old, fresh = running.settings, new.settings
    update: dict[str, Any] = {
        "rules": fresh.rules,
        "vibes": old.vibes.model_copy(
            update={"requests_per_second": fresh.vibes.requests_per_second}
        ),
    }
    if _topics(old) == _topics(fresh):
        update["sources"] = fresh.sources
    return LoadedBridge(
        running.path,
        old.model_copy(update=update),
        running.credentials,
        decoders,
        new.engine,
        new.warnings,
    )


def _company_keys(config: BridgeConfig) -> set[str]:
    keys = {config.vibes.company_key}
    keys.update(rule.company_key for rule in config.rules if rule.company_key is not None)
    return keys


def _close(decoders: list[Decoder]) -> None:
    for decoder in decoders:
        close = getattr(decoder, "close", None)
        if callable(close):
            close()


def _hash_or_empty(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError:
        return ""
