"""Read a YAML file into plain data while remembering where every key came from.

ruamel.yaml keeps line numbers on its round-trip nodes; we copy the document into
plain dicts and lists (what pydantic and the engine want) and keep a separate
index from each key path to its line, so that every later check, however deep,
can report ``FILE:LINE: message``.

Environment interpolation happens here, on string scalars only, so that an
unset variable is reported at the line that names it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bridge.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]

# ${NAME} or ${NAME:-default}; "$${" stands for a literal "${".
_VARIABLE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(slots=True)
class SourceDocument:
    """A loaded YAML document: plain data, where each key sits, what came from the environment."""

    path: Path
    data: Any
    lines: dict[KeyPath, int]
    interpolated: set[KeyPath] = field(default_factory=set)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the longest prefix of ``key_path`` that exists in the file."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(key_path[:end])
            if line is not None:
                return line
        return None

    def problem(self, key_path: KeyPath, message: str) -> Problem:
        """A problem located at ``key_path`` (or its nearest existing parent)."""
        return Problem(str(self.path), self.line_of(key_path), message)


def load_yaml(
    path: Path, environ: Mapping[str, str] | None = None, *, interpolate: bool = True
) -> SourceDocument:
    """Parse ``path``; raise :class:`ConfigError` listing every problem found.

    ``interpolate=False`` reads ``${...}`` literally (mapping-test files hold data, not settings).
    """
    env = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [Problem(str(path), None, f"cannot read the file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), None, "the file is not UTF-8 text")]) from None
    try:
        raw = YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([Problem(str(path), line, f"invalid YAML: {reason}")]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(str(path), None, f"invalid YAML: {exc}")]) from None
    document = SourceDocument(path=path, data=None, lines={(): 1})
    problems: list[Problem] = []
    document.data = _copy(raw, (), document, env if interpolate else None, problems)
    if problems:
        raise ConfigError(problems)
    return document


def _copy(
    node: Any,
    key_path: KeyPath,
    document: SourceDocument,
    env: Mapping[str, str] | None,
    problems: list[Problem],
) -> Any:
    if isinstance(node, CommentedMap):
        copied: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*key_path, str(key))
            position = node.lc.data.get(key)  # absent for keys merged in with "<<: *anchor"
            document.lines[child] = position[0] + 1 if position else node.lc.line + 1
            copied[str(key)] = _copy(value, child, document, env, problems)
        return copied
    if isinstance(node, CommentedSeq):
        items: list[Any] = []
        for index, value in enumerate(node):
            child = (*key_path, index)
            document.lines[child] = node.lc.item(index)[0] + 1
            items.append(_copy(value, child, document, env, problems))
        return items
    if isinstance(node, str):
        text = str(node)
        return text if env is None else _interpolate(text, key_path, document, env, problems)
    return _plain_scalar(node, key_path, document, problems)


def _plain_scalar(
    node: Any, key_path: KeyPath, document: SourceDocument, problems: list[Problem]
) -> Any:
    """ruamel's round-trip scalars (ScalarFloat, HexInt, TimeStamp ...) as plain JSON values.

    Constants in rules end up in JSON bodies, so only JSON's types may leave here;
    a YAML date or timestamp becomes its ISO 8601 text.
    """
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, date):  # datetime too
        return node.isoformat()
    problems.append(
        document.problem(key_path, "unsupported YAML value (custom tags are not allowed)")
    )
    return None


def _interpolate(
    text: str,
    key_path: KeyPath,
    document: SourceDocument,
    env: Mapping[str, str],
    problems: list[Problem],
) -> str:
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        document.interpolated.add(key_path)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(
            document.problem(key_path, f"environment variable {name} is not set and has no default")
        )
        return ""

    return _VARIABLE.sub(replace, text)
