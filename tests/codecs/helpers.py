"""Shared assertions for the codec tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.errors import DecodeError


def assert_dict_or_decode_error(decode: Callable[[bytes], Any], data: bytes) -> None:
    """The decoder contract: a dict, or a DecodeError with a code; nothing else."""
    try:
        value = decode(data)
    except DecodeError as exc:
        code = exc.code
    else:
        assert isinstance(value, dict)
        return
    assert code
    assert isinstance(code, str)
