"""The Vibes wire facts: status classes, the error envelope, the auth header."""

from __future__ import annotations

import base64

import orjson
import pytest

from bridge.vibes.api import (
    StatusClass,
    basic_auth_header,
    error_envelope,
    error_messages,
    events_path,
    status_class,
)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, StatusClass.ACCEPTED),
        (202, StatusClass.ACCEPTED),
        (409, StatusClass.DUPLICATE),
        (401, StatusClass.CREDENTIALS),
        (403, StatusClass.CREDENTIALS),
        (429, StatusClass.RATE_LIMITED),
        (408, StatusClass.UNAVAILABLE),
        (500, StatusClass.UNAVAILABLE),
        (503, StatusClass.UNAVAILABLE),
        (400, StatusClass.REJECTED),
        (404, StatusClass.REJECTED),
        (413, StatusClass.REJECTED),
        (422, StatusClass.REJECTED),
        (302, StatusClass.UNEXPECTED),
    ],
)
def test_status_classes(status: int, expected: StatusClass) -> None:
    assert status_class(status) is expected


def test_envelope_round_trip_keeps_only_messages() -> None:
    body = orjson.dumps(error_envelope(400, ["event_type is\n required", "bad mdn"]))
    assert error_messages(body) == "event_type is required; bad mdn"


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[]", b'{"errors": "x"}', b""])
def test_non_envelope_bodies_give_no_messages(body: bytes) -> None:
    assert error_messages(body) == ""


def test_messages_are_cut_to_the_limit_on_a_character_boundary() -> None:
    body = orjson.dumps(error_envelope(400, ["é" * 2000]))
    text = error_messages(body, limit=1024)
    assert len(text.encode()) <= 1024
    assert text.endswith("...")


def test_auth_header_and_path() -> None:
    header = basic_auth_header("user", "p:w")
    assert base64.b64decode(header.removeprefix("Basic ")) == b"user:p:w"
    assert events_path("acme/1") == "/companies/acme%2F1/events"
