"""Every bridge module imports on its own, whichever is imported first.

An import cycle between packages only shows when one of its modules is the
first to be imported (``import bridge.dead_letters`` once failed this way while
the test suite, importing in another order, passed). Each module is imported
here with every ``bridge`` module forgotten first, as a fresh process would.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import bridge

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(bridge.__path__, "bridge.")
    if not info.name.endswith("__main__")
)


def _forget_bridge() -> dict[str, object]:
    saved: dict[str, object] = {
        name: module for name, module in sys.modules.items() if name.startswith("bridge")
    }
    for name in saved:
        del sys.modules[name]
    return saved


@pytest.mark.parametrize("module", MODULES)
def test_the_module_imports_first(module: str) -> None:
    saved = _forget_bridge()
    try:
        importlib.import_module(module)
    finally:
        _forget_bridge()
        sys.modules.update(saved)  # type: ignore[arg-type]
