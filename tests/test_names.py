"""One name per fact: one partition type, header constants that say they are headers,
one word for rejected credentials (issue 15, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import bridge
from bridge.delivery.deliverer import Deliverer
from bridge.service.health import Health
from tests.support.modules import bridge_modules

BRIDGE = Path(bridge.__file__).resolve().parent
# (host, port) addresses, not partitions: the listeners and the runner that starts them.
ADDRESS_FILES = {
    "service/listener.py",
    "service/management.py",
    "service/callback_receiver.py",
    "service/runner.py",
}
HEADER_VALUE = re.compile(r"(bridge|vibes)\.[a-z_]+(\.[a-z_]+)*")


def sources() -> dict[str, str]:
    return {
        str(path.relative_to(BRIDGE)): path.read_text(encoding="utf-8")
        for path in BRIDGE.rglob("*.py")
    }


def test_the_partition_pair_has_one_name() -> None:
    aliases = [
        name
        for name, text in sources().items()
        if re.search(r"^\w+\s*(:\s*\w+\s*)?=\s*tuple\[str,\s*int\]", text, re.MULTILINE)
    ]
    assert aliases == ["records.py"]
    spelled_out = [
        name
        for name, text in sources().items()
        if "tuple[str, int]" in text and name not in ADDRESS_FILES | {"records.py"}
    ]
    assert spelled_out == [], "use bridge.records.Partition"


def test_every_header_name_constant_says_it_is_a_header() -> None:
    unnamed = []
    checked = 0
    for module in bridge_modules():
        for name, value in vars(module).items():
            if name.isupper() and isinstance(value, str) and HEADER_VALUE.fullmatch(value):
                checked += 1
                if not name.endswith("_HEADER"):
                    unnamed.append(f"{module.__name__}.{name} = {value!r}")
    assert unnamed == []
    assert checked >= 20  # the 14 dead-letter and 6 callback headers were found


def test_rejected_credentials_have_one_name_outside_the_metrics_hook() -> None:
    assert Health().credentials_rejected is False
    assert isinstance(Deliverer.credentials_rejected, property)
    # The observer method keeps the gauge's name; nothing else says "failing" for it.
    allowed = re.compile(
        r"def credentials_failing\(|\.credentials_failing\(|credentials_failing`?\""
    )
    stray = [
        f"{name}: {line.strip()}"
        for name, text in sources().items()
        for line in text.splitlines()
        if "credentials_failing" in line
        and not allowed.search(line)
        and "vibes_bridge_" not in line
    ]
    assert stray == []
