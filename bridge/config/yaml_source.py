"""Read a YAML file into plain data while remembering where every key came from.

ruamel.yaml keeps line numbers on its round-trip nodes; we copy the document into
plain dicts and lists (what pydantic and the engine want) and keep a separate
index from each key path to its line, so that every later check, however deep,
can report ``FILE:LINE: message``.

The copy is also where hostile input is stopped, because it is the one walk over
every node: nesting deeper than :data:`MAX_DEPTH`, anchors expanding to more than
:data:`MAX_ALIAS_NODES` nodes (the "billion laughs"), tags on maps or lists, and
keys that are not strings.

Environment interpolation (:mod:`bridge.config.interpolation`) happens here, on
string scalars only, so that an unset variable is reported at the line that
names it; the values it brought in are remembered so that no message quotes them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, CommentedSet
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import CollectionEndEvent, CollectionStartEvent

from bridge.config.files import read_regular_text
from bridge.config.interpolation import EnvValue, interpolate
from bridge.config.redaction import redact
from bridge.errors import ConfigError, Problem

KeyPath = tuple[str | int, ...]

MAX_DEPTH: Final = 64
"""Maps and lists nested deeper than this are refused (real files need about ten).

ruamel.yaml builds nodes recursively and overflows Python's stack at about 200 levels;
a fixed, lower limit gives the same answer wherever the file is loaded from."""

MAX_ALIAS_NODES: Final = 100_000
"""Nodes that ``*alias`` references (and ``<<: *merge``) may add by repeating an anchor.

A 1 KB file of nested aliases expands to 10^7 nodes and gigabytes; this limit stops the
copy after a few milliseconds. A file repeating a 50-node anchor in 500 rules uses 25,000."""

# What ruamel.yaml builds for standard tags that have no JSON equivalent.
_IMPLICIT_TAGS: Final[dict[type, str]] = {CommentedSet: "!!set", list: "!!pairs", bytes: "!!binary"}
_STANDARD_COLLECTION_TAGS: Final = (None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass(slots=True)
class SourceDocument:
    """A loaded YAML document: plain data, where each key sits, what came from the environment."""

    path: Path
    data: Any
    lines: dict[KeyPath, int]
    interpolated: set[KeyPath] = field(default_factory=set)
    # The environment values each interpolated string received, kept only to remove them
    # from messages (a value that fails a check must never be echoed: it may be a secret).
    env_values: dict[KeyPath, tuple[EnvValue, ...]] = field(default_factory=dict, repr=False)

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line of the longest prefix of ``key_path`` that exists in the file."""
        for end in range(len(key_path), -1, -1):
            line = self.lines.get(key_path[:end])
            if line is not None:
                return line
        return None

    def problem(self, key_path: KeyPath, message: str) -> Problem:
        """A problem located at ``key_path`` (or its nearest existing parent).

        Every message about the file passes here, so this is where environment values
        are taken out of it: checks may quote what they refuse, and need not know
        whether it came from the file or from a variable.
        """
        related = tuple(self._env_values_near(key_path))
        if related:
            message = redact(message, related)
        names = ", ".join(dict.fromkeys(item.name for item in self.env_values.get(key_path, ())))
        if names:
            message += f" (the value comes from {names} and is not shown)"
        return Problem(str(self.path), self.line_of(key_path), message)

    def _env_values_near(self, key_path: KeyPath) -> Iterator[EnvValue]:
        """Values interpolated at ``key_path``, inside it, or in a map that holds it."""
        for path, values in self.env_values.items():
            shorter = min(len(path), len(key_path))
            if path[:shorter] == key_path[:shorter]:
                yield from values


def load_yaml(
    path: Path, environ: Mapping[str, str] | None = None, *, interpolate: bool = True
) -> SourceDocument:
    """Parse ``path``; raise :class:`ConfigError` listing every problem found.

    ``interpolate=False`` reads ``${...}`` literally (mapping-test files hold data, not settings).
    """
    env = os.environ if environ is None else environ
    text = _read_text(path)
    raw = _parse(path, text)
    document = SourceDocument(path=path, data=None, lines={(): 1})
    copier = _Copier(document, env if interpolate else None)
    # On _Refused the reason is in copier.problems; nothing after it would be trustworthy.
    with contextlib.suppress(_Refused):
        document.data = copier.copy(raw, (), depth=0)
    if copier.problems:
        raise ConfigError(copier.problems)
    return document


def _read_text(path: Path) -> str:
    try:
        return read_regular_text(path)
    except OSError as exc:
        raise ConfigError(
            [Problem(str(path), None, f"cannot read the file: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(path), None, "the file is not UTF-8 text")]) from None


def _parse(path: Path, text: str) -> Any:
    try:
        return YAML(typ="rt", pure=True).load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise ConfigError([Problem(str(path), line, f"invalid YAML: {reason}")]) from None
    except YAMLError as exc:
        raise ConfigError([Problem(str(path), None, f"invalid YAML: {exc}")]) from None
    except RecursionError:
        # ruamel.yaml composes nodes recursively; its event parser does not, so it can
        # still say where the nesting went too deep.
        line = _line_too_deep(text)
        raise ConfigError([Problem(str(path), line, _too_deep_message())]) from None


def _line_too_deep(text: str) -> int | None:
    """The line where nesting first passes MAX_DEPTH (or the deepest point)."""
    depth, deepest, deepest_line = 0, -1, None
    try:
        for event in YAML(typ="rt", pure=True).parse(text):
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > deepest:
                    deepest, deepest_line = depth, event.start_mark.line + 1
                if depth > MAX_DEPTH:
                    return deepest_line
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except YAMLError:
        pass
    return deepest_line


def _too_deep_message() -> str:
    return f"maps and lists are nested more than {MAX_DEPTH} levels deep"


class _Refused(Exception):
    """Stops the copy: going on would only repeat the problem, or cost too much."""


@dataclass(slots=True)
class _Copier:
    """One walk over the ruamel.yaml nodes, into plain data and the line index."""

    document: SourceDocument
    env: Mapping[str, str] | None
    problems: list[Problem] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # collections already copied once
    alias_nodes: int = 0
    in_alias: int = 0  # > 0 while copying a repeated anchor
    alias_use: KeyPath = ()  # where the repeated anchor being copied is used

    def copy(self, node: Any, key_path: KeyPath, depth: int) -> Any:
        if not isinstance(node, CommentedMap | CommentedSeq):
            self._count()
            return self._scalar(node, key_path)
        if depth >= MAX_DEPTH:
            self.problems.append(self.document.problem(key_path, _too_deep_message()))
            raise _Refused
        repeated = id(node) in self.seen
        self.seen.add(id(node))
        if repeated and not self.in_alias:
            self.alias_use = key_path
        self.in_alias += repeated
        try:
            self._count()
            if not self._plain_collection(node, key_path):
                return None
            if isinstance(node, CommentedMap):
                return self._map(node, key_path, depth)
            return self._seq(node, key_path, depth)
        finally:
            self.in_alias -= repeated

    def _count(self) -> None:
        if not self.in_alias:
            return
        self.alias_nodes += 1
        if self.alias_nodes > MAX_ALIAS_NODES:
            self.problems.append(
                self.document.problem(
                    self.alias_use,
                    f"YAML aliases (*name) expand to more than {MAX_ALIAS_NODES:,} values; "
                    "refusing to expand them",
                )
            )
            raise _Refused

    def _plain_collection(self, node: CommentedMap | CommentedSeq, key_path: KeyPath) -> bool:
        """Tags on maps and lists (``!foo [a]``, ``!!omap``) are refused, like tagged scalars."""
        tag = node.tag.value
        ordered = type(node) is not CommentedMap and isinstance(node, CommentedMap)
        if tag in _STANDARD_COLLECTION_TAGS and not ordered:
            return True
        shown = tag if tag is not None else "!!omap"
        self.problems.append(
            self.document.problem(
                key_path, f"custom tags are not allowed ({shown}): write a plain map or list"
            )
        )
        return False

    def _map(self, node: CommentedMap, key_path: KeyPath, depth: int) -> dict[str, Any]:
        copied: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                self._non_string_key(node, key)
                continue
            child = (*key_path, str(key))
            position = node.lc.data.get(key)  # absent for keys merged in with "<<: *anchor"
            self.document.lines[child] = position[0] + 1 if position else node.lc.line + 1
            copied[str(key)] = self.copy(value, child, depth + 1)
        return copied

    def _non_string_key(self, node: CommentedMap, key: Any) -> None:
        position = node.lc.data.get(key)
        line = position[0] + 1 if position else node.lc.line + 1
        if isinstance(key, bool | int | float) or key is None:
            written = "null" if key is None else str(key).lower() if isinstance(key, bool) else key
            hint = f'quote it ("{written}": ...) if it is meant as text'
        else:
            hint = "keys must be text"
        message = f"a key must be text, not {_yaml_type(key)}: {hint}"
        self.problems.append(Problem(str(self.document.path), line, message))

    def _seq(self, node: CommentedSeq, key_path: KeyPath, depth: int) -> list[Any]:
        items: list[Any] = []
        for index, value in enumerate(node):
            child = (*key_path, index)
            position = node.lc.item(index)
            self.document.lines[child] = position[0] + 1 if position else node.lc.line + 1
            items.append(self.copy(value, child, depth + 1))
        return items

    def _scalar(self, node: Any, key_path: KeyPath) -> Any:
        if isinstance(node, str):
            return self._text(str(node), key_path)
        return self._plain_scalar(node, key_path)

    def _text(self, text: str, key_path: KeyPath) -> str:
        if self.env is None:
            return text
        result = interpolate(text, self.env)
        for error in result.errors:
            self.problems.append(self.document.problem(key_path, error))
        if result.variables:
            self.document.interpolated.add(key_path)
        if result.env_values:
            self.document.env_values[key_path] = result.env_values
        return result.text

    def _plain_scalar(self, node: Any, key_path: KeyPath) -> Any:
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
        tag = getattr(getattr(node, "tag", None), "value", None) or _IMPLICIT_TAGS.get(type(node))
        shown = f" ({tag})" if tag else ""
        message = f"custom tags are not allowed{shown}: write text, a number, true/false or null"
        self.problems.append(self.document.problem(key_path, message))
        return None


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, date):
        return "a date"
    return "a map or list"
