"""The ``json`` format: one UTF-8 JSON object per record value, parsed by orjson.

orjson is several times faster than the standard library here and refuses what a
JSON object value must not be: invalid UTF-8 (including lone surrogates), ``NaN``
and ``Infinity``, and nesting deeper than 1024 levels (``too_deep``, so that a
hostile ``[[[[...`` cannot exhaust the stack). Integers beyond 64 bits come back as
floats (orjson's documented behaviour), numbers beyond a double are invalid.
"""

from __future__ import annotations

from typing import Any

import orjson

from bridge.codecs.base import not_an_object, require_bytes
from bridge.errors import DecodeCode, DecodeError


class JsonDecoder:
    """Decodes UTF-8 JSON object values."""

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """A fresh dict; DecodeError ``invalid_utf8``, ``invalid_json``, ``too_deep``,
        ``not_an_object`` or ``null_value`` otherwise."""
        try:
            value = orjson.loads(require_bytes(data))
        except orjson.JSONDecodeError as exc:
            raise _translate(exc) from None
        if type(value) is not dict:
            raise not_an_object(_json_kind(value))
        return value


def _translate(exc: orjson.JSONDecodeError) -> DecodeError:
    # orjson has one exception type; its message names the cause (never the
    # payload), so the stable code is read from it.
    reason = exc.msg.lower()
    if "not valid utf-8" in reason:
        return DecodeError(DecodeCode.INVALID_UTF8, "the value is not valid UTF-8")
    if "recursion" in reason or "depth" in reason:
        return DecodeError(DecodeCode.TOO_DEEP, "the value nests deeper than 1024 levels")
    if "empty" in reason or "zero-length" in reason:
        return DecodeError(DecodeCode.INVALID_JSON, "the value is empty, not JSON")
    return DecodeError(
        DecodeCode.INVALID_JSON,
        f"the value is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "JSON array"
    if isinstance(value, str):
        return "JSON string"
    if value is None:
        return "JSON null"
    if isinstance(value, bool):
        return "JSON boolean"
    return "JSON number"
