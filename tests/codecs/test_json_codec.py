"""The json codec: objects decode, everything else is a DecodeError with a stable code."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.codecs import JsonDecoder, make_decoder
from bridge.errors import DecodeError
from tests.codecs.helpers import assert_dict_or_decode_error

decoder = JsonDecoder()


def test_an_object_decodes_to_a_fresh_dict_each_time() -> None:
    data = b'{"customer": {"first_name": "Dana"}, "items": [1, 2.5, null, true]}'
    first = decoder.decode(data)
    assert first == {"customer": {"first_name": "Dana"}, "items": [1, 2.5, None, True]}
    first["_kafka"] = {"topic": "t"}
    assert "_kafka" not in decoder.decode(data)


def test_make_decoder_builds_it() -> None:
    assert isinstance(make_decoder("json"), JsonDecoder)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (None, "null_value"),
        (b"", "invalid_json"),
        (b"   ", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"just a string"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (b"true", "not_an_object"),
        (b'{"a": 1', "invalid_json"),
        (b'{"a": 1}x', "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": 1e999}', "invalid_json"),
        (b'{"name": "\xff\xfe"}', "invalid_utf8"),
        (b'{"name": "\xed\xa0\x80"}', "invalid_utf8"),  # a UTF-8-encoded lone surrogate
        (b"[" * 100_000, "too_deep"),
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, "too_deep"),
    ],
)
def test_bad_values_give_a_decode_error_with_a_code(data: bytes | None, code: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decoder.decode(data)
    assert caught.value.code == code
    assert caught.value.reason == "decode_error"
    assert "\n" not in caught.value.message


def test_messages_never_carry_payload_content() -> None:
    secret = b'{"phone": "+12995551234", "first_name": "Dana"'  # truncated
    with pytest.raises(DecodeError) as caught:
        decoder.decode(secret)
    assert "2995551234" not in str(caught.value)
    assert "Dana" not in str(caught.value)


def test_huge_values_decode() -> None:
    big = b'{"blob": "' + b"x" * 5_000_000 + b'", "n": 18446744073709551615}'
    value = decoder.decode(big)
    assert len(value["blob"]) == 5_000_000
    assert value["n"] == 18446744073709551615


@given(st.binary(max_size=512))
def test_fuzz_returns_a_dict_or_raises_decode_error(data: bytes) -> None:
    assert_dict_or_decode_error(decoder.decode, data)


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ),
        max_size=5,
    )
)
def test_any_json_object_round_trips(value: dict[str, object]) -> None:
    assert decoder.decode(orjson.dumps(value)) == value
