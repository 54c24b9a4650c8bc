"""The ``as:`` conversions of value expressions.

Each converter takes a non-null value and returns the converted value or raises
:class:`ConversionError`, whose message names the target type but never the
value (it may be a phone number or a name).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import phonenumbers

from bridge.mapping.templates import render_scalar

Converter = Callable[[Any], Any]

CONVERSIONS: Final = ("string", "integer", "number", "boolean", "lower", "upper", "trim", "e164")


class ConversionError(ValueError):
    """The value cannot be converted; ``code`` is the mapping error's reason code."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def to_string(value: Any) -> str:
    """Strings stay; anything else becomes its compact JSON text (true, 3, {...})."""
    return value if isinstance(value, str) else render_scalar(value)


def to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError("conversion_failed", "a boolean cannot become an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConversionError("conversion_failed", "the value is not an integer")


def to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ConversionError("conversion_failed", "a boolean cannot become a number")
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return int(number) if number.is_integer() and "." not in value else number
    raise ConversionError("conversion_failed", "the value is not a finite number")


_TRUE_WORDS: Final = frozenset({"true", "yes", "1"})
_FALSE_WORDS: Final = frozenset({"false", "no", "0"})


def to_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise ConversionError("conversion_failed", "the value is not a boolean (true/false/yes/no/1/0)")


def e164_converter(region: str | None) -> Converter:
    """A converter to E.164 (``+12995551234``), with ``region`` for national numbers."""

    def to_e164(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConversionError("invalid_phone_number", "a phone number must be a string")
        try:
            number = phonenumbers.parse(str(value), region)
        except phonenumbers.NumberParseException:
            raise ConversionError("invalid_phone_number", "not a phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise ConversionError("invalid_phone_number", "not a valid phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    return to_e164


def converter_for(name: str, region: str | None = None) -> Converter:
    """The converter named by ``as:``; ``name`` must be one of :data:`CONVERSIONS`."""
    simple: dict[str, Converter] = {
        "string": to_string,
        "integer": to_integer,
        "number": to_number,
        "boolean": to_boolean,
        "lower": lambda value: to_string(value).lower(),
        "upper": lambda value: to_string(value).upper(),
        "trim": lambda value: to_string(value).strip(),
    }
    if name == "e164":
        return e164_converter(region)
    return simple[name]


def is_known_region(region: str) -> bool:
    """Whether phonenumbers knows ``region`` as a two-letter country code."""
    return region.upper() in phonenumbers.SUPPORTED_REGIONS
