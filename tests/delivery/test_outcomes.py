"""What an answer or a network failure means for an event (pure)."""

from __future__ import annotations

import dataclasses

import httpx
import orjson
import pytest

from bridge.bounded_http import as_httpx_error
from bridge.delivery.outcomes import (
    CredentialsRejected,
    Delivered,
    DeliveryUnavailable,
    Outcome,
    Rejected,
    outcome_of_exception,
    outcome_of_response,
)
from bridge.errors import (
    DecodeCode,
    DecodeError,
    DeliveryFailed,
    EventExpired,
    EventRejected,
    ExpiryCode,
    MappingCode,
    MappingError,
    RecordError,
    RetryReason,
)
from bridge.vibes.api import error_envelope

NOW = 1_800_000_000.0


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> object:
    return outcome_of_response(status, headers or {}, body, NOW)


@pytest.mark.parametrize("status", [200, 202, 409])
def test_accepted_and_duplicate_are_delivered(status: int) -> None:
    assert answer(status) == Delivered(status=status, attempts=1)


@pytest.mark.parametrize("status", [401, 403])
def test_credentials(status: int) -> None:
    outcome = answer(status)
    assert isinstance(outcome, CredentialsRejected)
    assert outcome.status == status


@pytest.mark.parametrize("status", [400, 404, 413, 415, 422])
def test_other_4xx_are_rejected_with_vibes_messages(status: int) -> None:
    body = orjson.dumps(error_envelope(status, ["event_type is invalid", "no recipient"]))
    outcome = answer(status, body=body)
    assert isinstance(outcome, Rejected)
    assert (outcome.status, outcome.response) == (status, "event_type is invalid; no recipient")


def test_a_rejection_without_the_envelope_keeps_no_body() -> None:
    outcome = answer(400, body=b"<html>customer +12995551234</html>")
    assert isinstance(outcome, Rejected)
    assert outcome.response == ""


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, RetryReason.STATUS_429),
        (500, RetryReason.STATUS_5XX),
        (503, RetryReason.STATUS_5XX),
        (408, RetryReason.STATUS_5XX),
        (302, RetryReason.STATUS_5XX),
    ],
)
def test_transient_statuses(status: int, reason: RetryReason) -> None:
    outcome = answer(status)
    assert isinstance(outcome, DeliveryUnavailable)
    assert (outcome.reason, outcome.status, outcome.retry_after) == (reason, status, None)


@pytest.mark.parametrize("name", ["Retry-After", "retry-after", "RETRY-AFTER"])
def test_retry_after_is_read_whatever_its_case(name: str) -> None:
    outcome = answer(429, {name: "4"})
    assert isinstance(outcome, DeliveryUnavailable)
    assert outcome.retry_after == 4.0


def test_retry_after_from_httpx_headers() -> None:
    outcome = answer(503, httpx.Headers({"Retry-After": "2"}))  # type: ignore[arg-type]
    assert isinstance(outcome, DeliveryUnavailable)
    assert outcome.retry_after == 2.0


class FakeAiohttpDisconnect(Exception):
    """Stands for aiohttp.ServerDisconnectedError without importing aiohttp."""


FakeAiohttpDisconnect.__module__ = "aiohttp.client_exceptions"


def caused(error: httpx.HTTPError, cause: BaseException) -> httpx.HTTPError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (httpx.ReadTimeout("slow"), RetryReason.TIMEOUT),
        (httpx.ConnectTimeout("slow"), RetryReason.TIMEOUT),
        (httpx.PoolTimeout("slow"), RetryReason.TIMEOUT),
        (caused(httpx.ReadTimeout("slow"), TimeoutError()), RetryReason.TIMEOUT),
        (httpx.ConnectError("refused"), RetryReason.CONNECTION),
        (httpx.RemoteProtocolError("closed"), RetryReason.CONNECTION),
        (httpx.ReadError("reset"), RetryReason.CONNECTION),
        # httpx-aiohttp's ConnectTimeout for a server that closed the connection
        (caused(httpx.ConnectTimeout("x"), FakeAiohttpDisconnect()), RetryReason.CONNECTION),
    ],
)
def test_exceptions(exc: httpx.HTTPError, reason: RetryReason) -> None:
    outcome = outcome_of_exception(exc)
    assert (outcome.reason, outcome.status, outcome.retry_after) == (reason, None, None)


def test_errors_leaking_from_aiohttp_become_httpx_errors() -> None:
    assert isinstance(as_httpx_error(FakeAiohttpDisconnect()), httpx.RemoteProtocolError)
    assert isinstance(as_httpx_error(ConnectionResetError()), httpx.RemoteProtocolError)
    assert isinstance(as_httpx_error(TimeoutError()), httpx.ReadTimeout)
    error = httpx.ConnectError("x")
    assert as_httpx_error(error) is error


def test_programming_errors_are_not_disguised_as_network_trouble() -> None:
    assert as_httpx_error(KeyError("bug")) is None
    assert as_httpx_error(ValueError("bug")) is None


OUTCOMES = [
    Delivered(200, 1),
    Rejected(400, "no recipient"),
    CredentialsRejected(401),
    DeliveryUnavailable(RetryReason.STATUS_429, status=429, retry_after=2.0),
]


@pytest.mark.parametrize("outcome", OUTCOMES, ids=lambda o: type(o).__name__)
def test_an_attempts_outcome_is_a_frozen_plain_value(outcome: Outcome) -> None:
    assert not isinstance(outcome, BaseException)  # data for the deliverer, never raised
    field = dataclasses.fields(outcome)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(outcome, field, 0)
    assert outcome == dataclasses.replace(outcome)  # compared by value


VERDICTS = [
    DecodeError(DecodeCode.TRUNCATED, "cut"),
    MappingError(MappingCode.NO_RECIPIENT, "rule r: no recipient"),
    EventRejected(400, "no recipient", attempts=2),
    EventExpired(ExpiryCode.MAX_RETRY_DURATION, "retried too long", attempts=7),
    DeliveryFailed("KeyError"),
]


@pytest.mark.parametrize("verdict", VERDICTS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("field", ["attempts", "code", "message", "anything_new"])
def test_a_verdict_refuses_changes_after_construction(verdict: RecordError, field: str) -> None:
    with pytest.raises(AttributeError, match="immutable"):
        setattr(verdict, field, 1)


@pytest.mark.parametrize("verdict", VERDICTS, ids=lambda v: type(v).__name__)
def test_a_verdict_can_still_be_raised_chained_and_annotated(verdict: RecordError) -> None:
    def fail() -> None:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            verdict.add_note("a note Python stores on the exception")
            raise verdict from inner

    with pytest.raises(RecordError) as raised:
        fail()
    assert isinstance(raised.value.__cause__, KeyError)


def test_the_attempts_are_a_constructor_argument() -> None:
    assert EventRejected(422, "nope", attempts=3).attempts == 3
    assert EventExpired(ExpiryCode.MAX_EVENT_AGE, "old").attempts == 0
