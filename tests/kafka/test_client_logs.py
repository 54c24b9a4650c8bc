"""librdkafka's repeated lines: the first of each kind, then one summary per interval."""

from __future__ import annotations

import logging

import pytest

from bridge.kafka.client_logs import MAX_KINDS, RepeatSummary

FAIL = "%s [%s] %s"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(*args: object, level: int = logging.ERROR, msg: str = FAIL) -> logging.LogRecord:
    return logging.LogRecord("bridge.kafka.librdkafka", level, __file__, 1, msg, args, None)


def _refused(client: str = "vibes-bridge#consumer-3", after_ms: int = 0) -> logging.LogRecord:
    text = (
        "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: "
        f"Connection refused (after {after_ms}ms in state CONNECT)"
    )
    return _record("FAIL", client, text)


def test_the_first_passes_repeats_are_held_back_then_summarised_with_the_count() -> None:
    clock = _Clock()
    summary = RepeatSummary(interval=30, clock=clock)
    assert summary.filter(_refused())
    held = [summary.filter(_refused(after_ms=n)) for n in range(200)]  # 20 a second, 10 s
    assert not any(held)
    clock.now = 30.0
    line = _refused()
    assert summary.filter(line)
    assert line.getMessage().endswith("(after 0ms in state CONNECT) (200 more like this held back)")
    assert line.__dict__["held_back"] == 200
    assert not summary.filter(_refused())  # the next interval starts over
    clock.now = 60.0
    quiet = _refused()
    assert summary.filter(quiet)
    assert quiet.getMessage().endswith("(1 more like this held back)")


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        (_refused("vibes-bridge#consumer-3"), _refused("vibes-bridge#consumer-7"), True),
        (_refused(after_ms=0), _refused(after_ms=12), True),
        (_refused(), _record("FAIL", "vibes-bridge#consumer-3", "Authentication failed"), False),
        (_refused(), _record("REQTMOUT", "vibes-bridge#consumer-3", "timed out"), False),
        (_refused(), _record("FAIL", "vibes-bridge#consumer-3", "x", level=logging.WARNING), False),
    ],
)
def test_kinds_are_level_facility_and_text_without_numbers(
    first: logging.LogRecord, second: logging.LogRecord, same: bool
) -> None:
    summary = RepeatSummary(interval=30, clock=_Clock())
    assert summary.filter(first)
    assert summary.filter(second) is not same


def test_lines_below_warning_always_pass() -> None:
    summary = RepeatSummary(interval=30, clock=_Clock())
    assert all(summary.filter(_record("BROKER", "c", "x", level=logging.DEBUG)) for _ in range(5))


def test_the_kinds_remembered_are_bounded() -> None:
    clock = _Clock()
    summary = RepeatSummary(interval=30, clock=clock)
    for n in range(MAX_KINDS * 3):
        assert summary.filter(_record(msg=f"kind {'x' * (n % 7)} {chr(65 + n % 26)} {n}-a"))
        clock.now += 0.001
    assert len(summary._seen) <= MAX_KINDS
