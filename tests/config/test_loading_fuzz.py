"""Any damage to a valid file gives a clean ConfigError, never another exception."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bridge.errors import ConfigError
from bridge.loading import load_bridge

EXAMPLE = Path(__file__).parents[2] / "examples" / "bridge.yaml"

GARBAGE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=8),
        st.sampled_from(["{a", "a..b", "${UNSET_X}", "avro", "x{{y}}", "@", "_kafka.key"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


BASE: dict[str, Any] = _plain(YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8")))
BASE["sources"][1]["schema"] = str(EXAMPLE.parent / BASE["sources"][1]["schema"])
BASE["sources"].append(
    {"topic": "shop.returns", "format": "confluent-avro", "schema_registry": "http://127.0.0.1:1"}
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(BASE)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    damage=st.lists(
        st.tuples(st.sampled_from(PATHS), GARBAGE, st.booleans()), min_size=1, max_size=3
    )
)
def test_damaged_files_fail_cleanly(
    folder: Path, damage: list[tuple[tuple[Any, ...], Any, bool]]
) -> None:
    document = copy.deepcopy(BASE)
    for path, garbage, delete in damage:
        parent: Any = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if delete and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = garbage
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    target = folder / "damaged.yaml"
    with target.open("w", encoding="utf-8") as stream:
        YAML(typ="safe").dump(document, stream)
    problems = _problems_of(target)
    if problems is not None:
        assert problems, "a ConfigError must say what is wrong"
        assert all(str(problem).startswith(str(target)) for problem in problems)


def _problems_of(path: Path) -> list[object] | None:
    """The problems loading reports; None when the damage happened to leave a valid file."""
    try:
        load_bridge(path, {})
    except ConfigError as exc:
        return list(exc.problems)
    return None
