"""The ``as:`` conversions of value expressions.

Each converter takes a non-null value and returns the converted value or raises
:class:`ConversionError`, whose message names the target type but never the
value (it may be a phone number or a name).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from typing import Any, Final

import phonenumbers

from bridge.errors import MappingCode
from bridge.mapping.templates import render_scalar

Converter = Callable[[Any], Any]

CONVERSIONS: Final = ("string", "integer", "number", "boolean", "lower", "upper", "trim", "e164")

# What the Vibes body (JSON, encoded by orjson) can carry: a larger integer would
# make the whole event unencodable, so a conversion refuses it instead.
_INT64 = range(-(2**63), 2**63)


class ConversionError(ValueError):
    """The value cannot be converted; ``code`` is the mapping error's reason code."""

    def __init__(self, code: MappingCode, message: str) -> None:
        self.code = code
        super().__init__(message)


def to_string(value: Any) -> str:
    """Strings stay; anything else becomes its compact JSON text (true, 3, {...})."""
    return value if isinstance(value, str) else render_scalar(value)


def to_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ConversionError(MappingCode.CONVERSION_FAILED, "a boolean cannot become an integer")
    integer: int | None = None
    if isinstance(value, int):
        integer = value
    elif isinstance(value, float) and value.is_integer():
        integer = int(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            integer = int(value.strip())
    if integer is None:
        raise ConversionError(MappingCode.CONVERSION_FAILED, "the value is not an integer")
    return _in_64_bits(integer)


def _in_64_bits(integer: int) -> int:
    if integer not in _INT64:
        raise ConversionError(
            MappingCode.CONVERSION_FAILED, "the integer does not fit in 64 bits (JSON for Vibes)"
        )
    return integer


def to_number(value: Any) -> int | float:
    """Integers stay integers while JSON for Vibes can carry them (64 bits), else floats."""
    if isinstance(value, bool):
        raise ConversionError(MappingCode.CONVERSION_FAILED, "a boolean cannot become a number")
    number: int | float | None = None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
        else:
            if number.is_integer() and "." not in value:
                number = int(number)
    if isinstance(number, int) and number not in _INT64:
        try:
            number = float(number)
        except OverflowError:  # beyond a double too
            number = None
    if number is None or not math.isfinite(number):
        raise ConversionError(MappingCode.CONVERSION_FAILED, "the value is not a finite number")
    return number


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
    raise ConversionError(
        MappingCode.CONVERSION_FAILED, "the value is not a boolean (true/false/yes/no/1/0)"
    )


def e164_converter(region: str | None) -> Converter:
    """A converter to E.164 (``+12995551234``), with ``region`` for national numbers.

    Messages say which region was assumed: the usual cause of a refused national
    number is a wrong ``region:``.
    """
    assumed = f" (region {region})" if region else " (no region: it needs a +country code)"

    def to_e164(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConversionError(
                MappingCode.INVALID_PHONE_NUMBER, "a phone number must be a string or a number"
            )
        formatted, problem = _e164(str(value), region)
        if formatted is None:
            raise ConversionError(MappingCode.INVALID_PHONE_NUMBER, f"{problem}{assumed}")
        return formatted

    return to_e164


# Repeat customers are the common case: a bounded LRU turns their conversion into
# a lookup (under 1 µs) instead of phonenumbers' parse, validation and format
# (20 to 25 µs; docs/performance.md). functools.lru_cache is thread-safe and C
# implemented; 16,384 entries hold a few MB of short strings, in this process's
# memory only. Refusals are cached too, so a bad number repeated costs no more.
E164_CACHE_SIZE: Final = 16_384


@functools.lru_cache(maxsize=E164_CACHE_SIZE)
def _e164(text: str, region: str | None) -> tuple[str | None, str]:
    """(the E.164 form, "") or (None, why not)."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None, "not a phone number"
    if not phonenumbers.is_valid_number(number):
        return None, "not a valid phone number"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ""


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
