"""The e164 conversion's LRU: same answers as uncached, bounded, refusals remembered too."""

from __future__ import annotations

import pytest

from bridge.mapping import conversions
from bridge.mapping.conversions import E164_CACHE_SIZE, ConversionError, e164_converter


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    conversions._e164.cache_clear()


def test_a_repeat_customer_is_a_cache_hit_with_the_same_answer() -> None:
    convert = e164_converter("US")
    assert convert("(212) 555-0134") == "+12125550134"
    assert convert("(212) 555-0134") == "+12125550134"
    info = conversions._e164.cache_info()
    assert (info.hits, info.misses) == (1, 1)


def test_the_region_is_part_of_the_key() -> None:
    assert e164_converter("US")("212 555 0134") == "+12125550134"
    with pytest.raises(ConversionError):
        e164_converter(None)("212 555 0134")  # national, no region: refused, not the US answer
    assert e164_converter("GB")("020 7946 0958") == "+442079460958"


def test_a_refusal_is_cached_and_still_refused_with_its_reason() -> None:
    convert = e164_converter("US")
    for _ in range(2):
        with pytest.raises(ConversionError, match="not a valid phone number"):
            convert("123")
    assert conversions._e164.cache_info().hits == 1


def test_the_cache_is_bounded() -> None:
    convert = e164_converter("US")
    for number in range(E164_CACHE_SIZE + 10):
        convert(f"+1 212 {number // 10000 + 555:03d} {number % 10000:04d}")
    assert conversions._e164.cache_info().currsize <= E164_CACHE_SIZE
