"""The test harness's rules: no conftest imports, no private poll loops, one bounded wait.

Shared helpers live in tests/support/ as plain modules and shared fixtures are a
plugin (tests/support/fixtures.py): a module importing a conftest, or a test
writing its own sleep-and-check loop (which tends to lose its deadline), is the
class of problem the harness removed, so these checks keep it from coming back.
"""

from __future__ import annotations

import ast
import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.paths import ROOT
from tests.support.waiting import poll_until, wait_until, wait_until_async

# The one module allowed to loop on a clock: the bounded wait itself.
WAIT_MODULE = ROOT / "tests" / "support" / "waiting.py"


def _python_files(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _conftest_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno} {name}"
            for name in names
            if name.split(".")[-1] == "conftest"
        ]
    return found


def _is_poll_call(node: ast.AST) -> bool:
    """``time.monotonic()``, or a ``sleep(x)`` with x not the literal 0 (a bare yield)."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    if node.func.attr == "monotonic":
        return True
    if node.func.attr != "sleep":
        return False
    return not (node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0)


def _poll_loops(source: str) -> list[int]:
    """The lines of ``while`` loops that sleep or read the clock: hand-made polls."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.While) and any(_is_poll_call(n) for n in ast.walk(node))
    ]


def test_no_module_imports_a_conftest() -> None:
    found = [
        hit
        for path in _python_files("tests", "bench", "scripts")
        for hit in _conftest_imports(path)
    ]
    assert found == [], "import from tests/support/ instead (fixtures are a plugin)"


def test_no_test_writes_its_own_poll_loop() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _python_files("tests")
        if path != WAIT_MODULE
        for line in _poll_loops(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "use tests.support.waiting (wait_until, wait_until_async, poll_until)"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("while True:\n    time.sleep(0.1)\n", 1),
        ("async def f():\n    while x:\n        await asyncio.sleep(0.005)\n", 1),
        ("while time.monotonic() < deadline:\n    pass\n", 1),
        ("async def f():\n    while x:\n        await asyncio.sleep(0)\n", 0),
        ("while chunk := conn.recv(65536):\n    pass\n", 0),
    ],
    ids=["sleep", "async-sleep", "deadline", "bare-yield", "io-loop"],
)
def test_the_poll_loop_check_sees_loops_and_only_those(source: str, expected: int) -> None:
    assert len(_poll_loops(source)) == expected


def test_poll_until_gives_up_at_its_bound_and_says_so() -> None:
    started = time.monotonic()
    assert poll_until(lambda: False, 0.1) is False
    assert time.monotonic() - started >= 0.1
    assert poll_until(lambda: True, 0.0) is True


def test_wait_until_fails_naming_what_it_awaited() -> None:
    with pytest.raises(
        AssertionError, match=re.escape("timed out after 0.05 s waiting for the moon")
    ):
        wait_until(lambda: False, 0.05, "the moon")


def test_wait_until_async_lets_the_loop_make_the_condition_true() -> None:
    async def scenario() -> None:
        done = asyncio.Event()
        setter = asyncio.get_running_loop().call_soon(done.set)
        try:
            await wait_until_async(done.is_set, 5, "a task on the same loop")
        finally:
            setter.cancel()

    asyncio.run(scenario())


def test_wait_until_async_fails_at_its_bound() -> None:
    with pytest.raises(AssertionError, match="waiting for nothing"):
        asyncio.run(wait_until_async(lambda: False, 0.05, "nothing"))
