"""The dependency rules of docs/architecture.md, as ruff enforces them.

Each case lints one import as if it were written in a given file (``ruff
--stdin-filename``), so the real configuration, nested ruff.toml files
included, decides; nothing is written into the source tree.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import bridge

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).with_name("ruff")
RUFF_LINT = (str(RUFF), "check", "--no-cache", "--select", "TID251", "--output-format", "concise")

BANNED = [
    ("bridge/codecs/avro_codec.py", "import httpx"),
    ("bridge/mapping/engine.py", "import socket"),
    ("bridge/mapping/engine.py", "import confluent_kafka"),
    ("bridge/vibes/api.py", "from aiohttp import web"),
    ("bridge/vibes/entity.py", "import asyncio"),
    ("bridge/records.py", "import httpx"),
    ("bridge/config/loader.py", "import prometheus_client"),
    ("bridge/service/pipeline.py", "import prometheus_client"),
    ("bridge/service/pipeline.py", "from confluent_kafka import Consumer"),
    ("bridge/service/pipeline.py", "from aiohttp import web"),
    ("bridge/service/offsets.py", "from aiohttp.http_exceptions import HttpProcessingError"),
    ("bridge/commands/map_cmd.py", "import aiohttp"),
    ("bridge/delivery/client.py", "from bridge.kafka.messages import to_source_record"),
    ("bridge/delivery/client.py", "import confluent_kafka"),
    ("bridge/kafka/consumer.py", "from bridge.delivery import client"),
    ("bridge/kafka/consumer.py", "import httpx"),
    ("bridge/sim/app.py", "from bridge.mapping.engine import Engine"),
    ("bridge/sim/app.py", "from bridge.errors import MappingError"),
    ("bridge/sim/app.py", "import confluent_kafka"),
    ("bridge/loading.py", "from bridge.sim import Simulator"),
    ("bridge/cli.py", "import bridge.sim.app"),
    ("bridge/mapping/engine.py", "from devtools.avro_encode import encode_avro"),
    ("bridge/replay/letters.py", "from bridge.service.stages import prepare"),
    ("bridge/replay/scope.py", "from bridge.kafka.reader import BoundedReader"),
    ("bridge/replay/report.py", "import httpx"),
    ("bridge/tracing/__init__.py", "from opentelemetry import trace"),
    ("bridge/service/consumer_loop.py", "from opentelemetry import trace"),
    ("bridge/delivery/deliverer.py", "import opentelemetry.trace"),
    ("bridge/mapping/engine.py", "from opentelemetry.trace import SpanKind"),
    ("bridge/kafka/consumer.py", "import opentelemetry"),
    ("bridge/sim/app.py", "from bridge.tracing import NO_TRACING"),
]

ALLOWED = [
    ("bridge/replay/letters.py", "from bridge.dead_letters import REASON_HEADER"),
    ("bridge/service/replay.py", "from bridge.replay import read_letter"),
    ("bridge/codecs/registry.py", "import httpx"),
    ("bridge/kafka/consumer.py", "import confluent_kafka"),
    ("bridge/delivery/client.py", "import httpx"),
    ("bridge/metrics.py", "import prometheus_client"),
    ("bridge/tracing/otel.py", "from opentelemetry import trace"),
    ("bridge/service/management.py", "from aiohttp import web"),
    ("bridge/service/callback_receiver.py", "from aiohttp import web"),
    ("bridge/service/listener.py", "from aiohttp import web"),
    ("bridge/service/pipeline.py", "from bridge.kafka import consumer"),
    ("bridge/sim/app.py", "from aiohttp import web"),
    ("bridge/sim/app.py", "from bridge.vibes.api import events_path"),
    ("bridge/commands/sim_cmd.py", "from bridge.sim.server import run"),
    ("bridge/mapping/engine.py", "import orjson"),
    ("tests/sim/test_units.py", "from bridge.sim.app import Simulator"),
    ("bench/avro_decode.py", "from devtools.avro_encode import encode_avro"),
    ("scripts/demo.py", "import confluent_kafka"),
]


def banned_import_findings(path: str, source: str) -> str:
    """ruff's TID251 findings for ``source`` linted as the file ``path`` (empty: none)."""
    result = subprocess.run(
        [*RUFF_LINT, "--stdin-filename", path, "-"],
        input=source + "\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return "\n".join(line for line in result.stdout.splitlines() if "TID251" in line)


@pytest.mark.parametrize(("path", "source"), BANNED)
def test_rule_refuses(path: str, source: str) -> None:
    assert "is banned" in banned_import_findings(path, source)


@pytest.mark.parametrize(("path", "source"), ALLOWED)
def test_rule_allows(path: str, source: str) -> None:
    assert banned_import_findings(path, source) == ""


def test_the_simulator_bans_every_bridge_package_but_vibes() -> None:
    """A new bridge package must be added to bridge/sim/ruff.toml's list."""
    config = tomllib.loads((ROOT / "bridge" / "sim" / "ruff.toml").read_text())
    banned = set(config["lint"]["flake8-tidy-imports"]["banned-api"])
    packages = {
        f"bridge.{module.name}"
        for module in pkgutil.iter_modules(bridge.__path__)
        if not module.name.startswith("__")
    }
    planned = {"bridge.delivery", "bridge.service", "bridge.metrics"}
    assert (packages | planned) - {"bridge.sim", "bridge.vibes"} <= banned
