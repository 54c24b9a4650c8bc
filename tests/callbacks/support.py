"""What the callback tests share: a bridge with a receiver, the simulator's callback knobs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.bridge_service import BridgeProcess
from tests.support.paths import ROOT

TOKEN = "e2e-token-0123456789abcdef"
CALLBACKS_COMMAND = (sys.executable, "-m", "bridge", "callbacks")


def callbacks_section(topic: str, **extra: str) -> str:
    lines = [
        "callbacks:",
        "  host: 127.0.0.1",
        "  port: 0",
        f"  token: {TOKEN}",
        f"  topic: {topic}",
        "  allow_from: [127.0.0.1/32]",
        *(f"  {key}: {value}" for key, value in extra.items()),
    ]
    return "\n".join(lines) + "\n"


def with_callbacks(config: Path, topic: str, **extra: str) -> Path:
    """Append a callbacks: section (top-level key order does not matter in YAML)."""
    config.write_text(config.read_text() + callbacks_section(topic, **extra))
    return config


def receiver_url(bridge: BridgeProcess) -> str:
    """The receiver's URL with the token, from its start-up log line."""
    for line in bridge.log_lines():
        if line.get("message") == "callback receiver listening":
            return f"http://127.0.0.1:{line['port']}/vibes/callbacks/{TOKEN}"
    raise AssertionError("the bridge did not log its callback receiver")


def callbacks_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CALLBACKS_COMMAND, *args],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


class SimCallbacks:
    """The simulator's callback inspection and knobs."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, timeout=10.0)

    def configure(self, **knobs: float) -> None:
        self._client.post(
            "/_sim/callbacks/settings", content=orjson.dumps(knobs)
        ).raise_for_status()

    def sent(self) -> dict[str, Any]:
        result: dict[str, Any] = self._client.get("/_sim/callbacks").json()
        return result

    def close(self) -> None:
        self._client.close()


def acknowledged(deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The attempts the receiver answered 2xx."""
    return [entry for entry in deliveries if entry["answer"] is not None and entry["answer"] < 300]


def by_status(entries: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    return Counter((e["action_type"], e["status"], e["status_reason"]) for e in entries)


def headers_of(message: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers() or []}


def body_of(message: Any) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(message.value())
    return result
