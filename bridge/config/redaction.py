"""Take environment values out of a message before anyone sees it.

Checks quote what they refuse (``invalid duration '30x'``), which helps when the
text is in the file and leaks when it came from ``${VIBES_PASSWORD}``. Rather than
teach every check (pydantic's included) where its input came from, the one place
that turns a message into a :class:`~bridge.errors.Problem` replaces each value
with the reference that produced it: ``invalid duration ${DUR}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bridge.config.interpolation import EnvValue

# A value this short is replaced only where it stands alone, so that a variable
# holding "1" does not turn "rules[1]" into "rules[${N}]".
_MIN_FREE_LENGTH = 4


def redact(message: str, values: Iterable[EnvValue]) -> str:
    """``message`` with every form of each value (quoted, escaped, bare) replaced."""
    for item in sorted(values, key=lambda item: len(item.value), reverse=True):
        reference = f"${{{item.name}}}"
        for form in _forms(item.value):
            if len(form) >= _MIN_FREE_LENGTH or form.startswith(("'", '"')):
                message = message.replace(form, reference)
            else:
                pattern = rf"(?<![A-Za-z0-9_]){re.escape(form)}(?![A-Za-z0-9_])"
                message = re.sub(pattern, reference.replace("\\", r"\\"), message)
    return message


def _forms(value: str) -> list[str]:
    """How a message may spell ``value``: repr, JSON-style quotes, escaped, bare."""
    quoted = repr(value)
    forms = [quoted, f'"{value}"', f"'{value}'", quoted[1:-1], value]
    return [form for form in dict.fromkeys(forms) if form]
