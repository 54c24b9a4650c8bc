"""Every module of the bridge package, found by file (bridge/service has no __init__.py,
so pkgutil's walk would silently skip it)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import bridge

BRIDGE = Path(bridge.__file__).resolve().parent


def bridge_modules() -> Iterator[ModuleType]:
    """Each importable module under bridge/ (not ``__main__``, which runs the CLI)."""
    for path in sorted(BRIDGE.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        parts = path.relative_to(BRIDGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield importlib.import_module(".".join(parts))
