"""The package's public names, as httpx checks its own."""

from __future__ import annotations

import bridge.codecs


def test_public_names_are_exported_once() -> None:
    assert len(set(bridge.codecs.__all__)) == len(bridge.codecs.__all__)
    for name in bridge.codecs.__all__:
        assert hasattr(bridge.codecs, name), name


def test_every_decoder_has_the_decode_method() -> None:
    from bridge.codecs import AvroDecoder, ConfluentAvroDecoder, JsonDecoder

    for cls in (AvroDecoder, ConfluentAvroDecoder, JsonDecoder):
        assert callable(cls.decode)
