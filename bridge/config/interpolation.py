"""``${NAME}`` and ``${NAME:-default}`` in string values, replaced from the environment.

Hand-written rather than ``string.Template`` or ``os.path.expandvars``: neither has
defaults, and both pass malformed references through silently, which is how
``${UNSET:-${Y}}`` or an unclosed ``${Y`` used to end up literally in event bodies.
Here ``${`` always starts a reference and anything malformed is an error; ``$${``
is a literal ``${``; a ``$`` not followed by ``{`` is just a dollar sign.

``:-`` applies when the variable is unset *or empty*, as in POSIX shells and
Docker Compose. Other shell forms (``${NAME-x}``, ``${NAME:?x}``, ``${NAME:+x}``)
are refused rather than half supported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHELL_FORMS: Final = ("-", "=", "?", "+", ":=", ":?", ":+")
_LITERAL_HINT: Final = "write $${ for a literal ${"


@dataclass(frozen=True, slots=True)
class EnvValue:
    """A value that came from the environment, and the variable that held it."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The text with references replaced, what it used, and what went wrong."""

    text: str
    variables: tuple[str, ...]  # every name referenced, set or not
    env_values: tuple[EnvValue, ...]  # only values read from the environment (not defaults)
    errors: tuple[str, ...]


def interpolate(text: str, env: Mapping[str, str]) -> Interpolated:
    """Replace every reference in ``text``; report each malformed or unset one."""
    if "$" not in text:
        return Interpolated(text, (), (), ())
    parts: list[str] = []
    variables: list[str] = []
    env_values: list[EnvValue] = []
    errors: list[str] = []
    position = 0
    while (dollar := text.find("$", position)) != -1:
        parts.append(text[position:dollar])
        if text.startswith("$${", dollar):
            parts.append("${")
            position = dollar + 3
            continue
        if not text.startswith("${", dollar):
            parts.append("$")
            position = dollar + 1
            continue
        close = text.find("}", dollar + 2)
        if close == -1:
            errors.append(f"unclosed ${{ in a value: end it with }} or {_LITERAL_HINT}")
            return Interpolated(text, tuple(variables), tuple(env_values), tuple(errors))
        reference = _parse(text[dollar + 2 : close])
        position = close + 1
        if isinstance(reference, str):
            errors.append(reference)
            continue
        name, default = reference
        variables.append(name)
        value = env.get(name)
        if value:
            env_values.append(EnvValue(name, value))
            parts.append(value)
        elif default is not None:
            parts.append(default)
        elif value is not None:
            parts.append(value)  # set but empty, and no default: empty, as in a shell
        else:
            errors.append(f"environment variable {name} is not set and has no default")
    parts.append(text[position:])
    return Interpolated("".join(parts), tuple(variables), tuple(env_values), tuple(errors))


def _parse(body: str) -> tuple[str, str | None] | str:
    """``(name, default or None)`` for the text between ``${`` and ``}``, or an error."""
    if "${" in body:
        return "a ${...} default cannot hold another ${...} (nesting is not supported)"
    match = _NAME.match(body)
    if body == "":
        return f"empty variable name in ${{}}: {_LITERAL_HINT}"
    if match is None:
        return (
            f"invalid variable name in ${{{body}}}: names are letters, digits and _, "
            f"not starting with a digit ({_LITERAL_HINT})"
        )
    name, rest = match.group(), body[match.end() :]
    if rest == "":
        return name, None
    if rest.startswith(":-"):
        return name, rest[2:]
    if rest.startswith(_SHELL_FORMS):
        operator = rest[:2] if rest.startswith(":") else rest[:1]
        return f"${{{name}{operator}...}} is not supported: write ${{{name}:-default}}"
    return f"invalid reference ${{{body}}}: write ${{{name}}} or ${{{name}:-default}}"
