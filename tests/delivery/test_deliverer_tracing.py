"""The deliverer's one call into tracing per attempt: its span's headers go on that
attempt's request, and the span hears the attempt's outcome (None when cancelled)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
import pytest

from bridge.delivery.outcomes import Delivered, DeliveryUnavailable, Outcome
from bridge.mapping.engine import MappedEvent
from tests.delivery.helpers import json_answer, mapped, rig


@dataclass
class FakeSpan:
    headers: Mapping[str, str]
    outcomes: list[Outcome | None] = field(default_factory=list)

    def finished(self, outcome: Outcome | None) -> None:
        self.outcomes.append(outcome)


@dataclass
class FakeTracer:
    spans: list[FakeSpan] = field(default_factory=list)

    def attempt_started(self, event: MappedEvent, attempt: int) -> FakeSpan:
        span = FakeSpan({"traceparent": f"00-{'a' * 32}-{attempt:016x}-01"})
        self.spans.append(span)
        return span


def test_each_attempt_sends_its_own_span_s_traceparent_and_reports_its_outcome() -> None:
    seen: list[str | None] = []
    answers = [503, 200]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("traceparent"))
        return json_answer(answers.pop(0))

    tracer = FakeTracer()
    r = rig(handler, tracer=tracer)
    delivered = asyncio.run(r.time.run(r.deliverer.deliver(mapped())))
    assert delivered == Delivered(200, attempts=2)
    assert seen == [f"00-{'a' * 32}-{n:016x}-01" for n in (1, 2)]
    first, second = (span.outcomes for span in tracer.spans)
    assert len(first) == 1
    assert isinstance(first[0], DeliveryUnavailable)
    assert first[0].status == 503
    assert second == [Delivered(200, attempts=1)]


def test_a_cancelled_attempt_ends_its_span_with_none() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # never answers
        raise AssertionError

    tracer = FakeTracer()
    r = rig(handler, tracer=tracer)

    async def scenario() -> None:
        task = asyncio.ensure_future(r.deliverer.deliver(mapped()))
        while not tracer.spans:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(r.time.run(scenario()))
    assert [span.outcomes for span in tracer.spans] == [[None]]


def test_without_tracing_no_trace_header_is_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_answer(200)

    r = rig(handler)
    asyncio.run(r.time.run(r.deliverer.deliver(mapped())))
    assert "traceparent" not in seen[0].headers
