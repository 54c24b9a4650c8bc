"""Every package's public names, as httpx checks its own.

The packages are found by walking ``bridge``, so one added later is covered too:
each has an ``__all__``, sorted as ruff's RUF022 sorts it (constants, classes,
then the rest), without repeats, and every name in it imports.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import pytest

import bridge


def _packages() -> list[str]:
    names = [bridge.__name__]
    for module in pkgutil.walk_packages(bridge.__path__, prefix=f"{bridge.__name__}."):
        if module.ispkg:  # only packages: importing a __main__ module would run it
            names.append(module.name)
    return names


def _ruff_order(name: str) -> tuple[int, str]:
    if name.isupper():
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    return group, name


def test_the_walk_finds_the_packages() -> None:
    assert {"bridge", "bridge.codecs", "bridge.mapping", "bridge.config", "bridge.service"} <= set(
        _packages()
    )


@pytest.mark.parametrize("name", _packages())
def test_each_package_exports_a_sorted_all_whose_names_import(name: str) -> None:
    package: ModuleType = importlib.import_module(name)
    exported = getattr(package, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
    assert exported == sorted(exported, key=_ruff_order), f"{name}.__all__ is not sorted"
    for public in exported:
        assert hasattr(package, public), f"{name}.{public}"


def test_every_decoder_has_the_decode_method() -> None:
    from bridge.codecs import AvroDecoder, ConfluentAvroDecoder, JsonDecoder

    for cls in (AvroDecoder, ConfluentAvroDecoder, JsonDecoder):
        assert callable(cls.decode)
