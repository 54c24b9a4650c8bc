"""One delivery attempt's answer (a status or an exception) as a bridge outcome.

Pure: the client hands in what httpx gave it, and the deliverer decides by type.
Keeping the mapping here, away from the network, lets every status and every
exception class be tested without a server.

An attempt's outcome is a frozen value, not an exception: most attempts are
retried, and only the deliverer's final verdict (``EventRejected``,
``EventExpired``) is raised, built whole with the attempts it took.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from bridge.delivery.retry import parse_retry_after
from bridge.errors import RetryReason
from bridge.vibes.api import StatusClass, error_messages, status_class

RETRY_AFTER_HEADER: Final = "retry-after"


@dataclass(frozen=True, slots=True)
class Delivered:
    """Vibes has the event: a 2xx, or 409 (it already had this ``event_id``).

    The deliverer adds when its first attempt started and when Vibes accepted it
    (epoch milliseconds), for delivery receipts; they do not take part in equality.
    """

    status: int
    attempts: int
    first_attempt_ms: int | None = field(default=None, compare=False)
    accepted_ms: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A non-retryable 4xx (not 401, 403, 409 or 429): the event can never pass.

    ``response`` is Vibes' error messages on one line, cut to the dead-letter
    header's 1 KiB (``bridge.vibes.api.error_messages``).
    """

    status: int
    response: str


@dataclass(frozen=True, slots=True)
class CredentialsRejected:
    """401 or 403: the credentials are wrong for every event, not this one.

    Never a dead letter: delivery pauses, the bridge reports not ready, and it
    probes slowly until the credentials work again.
    """

    status: int


@dataclass(frozen=True, slots=True)
class DeliveryUnavailable:
    """A failure that may pass: retry later.

    ``retry_after`` is Vibes' ``Retry-After`` in seconds when it sent one;
    ``status`` is the HTTP status when there was an answer at all.
    """

    reason: RetryReason
    status: int | None = None
    retry_after: float | None = None


Outcome = Delivered | Rejected | CredentialsRejected | DeliveryUnavailable


def outcome_of_response(
    status: int, headers: Mapping[str, str], body: bytes, now: float
) -> Outcome:
    """What an answer means for its event; ``now`` is epoch seconds, for a dated Retry-After.

    Returned, not raised: one attempt's outcome is data the deliverer acts on.
    1xx and 3xx (a proxy or a redirect in the way) are retried like a 5xx, since
    the same request may pass once the thing in the way is gone.
    """
    kind = status_class(status)
    if kind in (StatusClass.ACCEPTED, StatusClass.DUPLICATE):
        return Delivered(status=status, attempts=1)
    if kind is StatusClass.CREDENTIALS:
        return CredentialsRejected(status)
    if kind is StatusClass.REJECTED:
        return Rejected(status, error_messages(body))
    retry_after = parse_retry_after(_header(headers, RETRY_AFTER_HEADER), now)
    reason = RetryReason.STATUS_429 if kind is StatusClass.RATE_LIMITED else RetryReason.STATUS_5XX
    return DeliveryUnavailable(reason, status=status, retry_after=retry_after)


def outcome_of_exception(exc: httpx.HTTPError) -> DeliveryUnavailable:
    """A request that got no answer: a timeout, or a connection that failed or closed.

    Every such failure is transient: the event may well pass on the next try.
    """
    reason = RetryReason.TIMEOUT if _is_timeout(exc) else RetryReason.CONNECTION
    return DeliveryUnavailable(reason)


def timed_out() -> DeliveryUnavailable:
    """The attempt's overall deadline passed: the same transient timeout as httpx's own.

    So ``max_retry_duration`` applies: the event is retried, then dead-lettered
    as expired, exactly as for a server that never answered.
    """
    return DeliveryUnavailable(RetryReason.TIMEOUT)


def _is_timeout(exc: httpx.HTTPError) -> bool:
    if not isinstance(exc, httpx.TimeoutException):
        return False
    # httpx-aiohttp maps every aiohttp connection error it has no better class for
    # (a server that closed the connection, a reset) to ConnectTimeout. A timeout's
    # cause is a TimeoutError (aiohttp's timeouts subclass it) or httpcore's own
    # timeout, never a plain connection error: that tells the two apart without
    # importing aiohttp here.
    cause = exc.__cause__
    return cause is None or isinstance(cause, TimeoutError) or _from_httpcore(cause)


def _from_httpcore(cause: BaseException) -> bool:
    return type(cause).__module__.startswith("httpcore")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``name`` from ``headers`` whatever its case (httpx.Headers or a plain dict)."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)
