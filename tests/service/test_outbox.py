"""The dead-letter outbox with a fake producer: finished on acknowledgement, resent, cut to fit."""

from __future__ import annotations

import logging
from typing import cast

import pytest

from bridge.dead_letters import VALUE_TRUNCATED_HEADER, DeadLetter, dead_letter
from bridge.errors import DecodeCode, DecodeError
from bridge.kafka.producer import DeadLetterProducer
from bridge.metrics import BridgeMetrics
from bridge.records import Position
from bridge.service.health import Health
from bridge.service.offsets import OffsetTracker, Ticket
from bridge.service.outbox import DeadLetterOutbox
from tests.service.loop_fakes import FakeClock, FakeProducer, record

TOPIC = "shop.orders"
PHONE = b"+15551234567"  # person data in the record: never in a log line
RETRY = 5.0


class Rig:
    def __init__(self, *, max_record_bytes: int = 1_000_000, ack: str | None = "ok") -> None:
        self.clock = FakeClock()
        self.producer = FakeProducer(self.clock, ack=ack)
        self.tracker = OffsetTracker(self.clock)
        self.tracker.assign(TOPIC, 0)
        self.metrics = BridgeMetrics()
        self.health = Health(clock=self.clock)
        self.outbox = DeadLetterOutbox(
            cast(DeadLetterProducer, self.producer),
            self.tracker,
            self.metrics,
            self.health,
            retry_seconds=RETRY,
            clock=self.clock,
            max_record_bytes=max_record_bytes,
        )

    def letter(
        self, offset: int = 0, value: bytes = b"not json " + PHONE
    ) -> tuple[DeadLetter, Ticket]:
        source = record(TOPIC, 0, offset, value)
        ticket = self.tracker.add(TOPIC, 0, offset, units=1, size=len(value))
        return dead_letter(source, DecodeError(DecodeCode.INVALID_JSON, "not JSON")), ticket

    def written(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "vibes_bridge_dead_letters_total", {"reason": "decode_error"}
        )
        return value or 0.0


def test_a_letter_finishes_its_record_only_when_acknowledged() -> None:
    rig = Rig(ack=None)
    letter, ticket = rig.letter()
    rig.outbox.write(letter, ticket)
    assert len(rig.producer.sent) == 1
    rig.outbox.serve()
    assert rig.tracker.records_in_flight == 1
    rig.producer.ack = "ok"
    rig.outbox.serve()
    assert rig.tracker.records_in_flight == 0
    assert rig.tracker.positions_to_commit() == {(TOPIC, 0): Position(1)}
    assert rig.written() == 1
    assert not rig.health.dead_letters_failing


@pytest.mark.parametrize("error", ["_MSG_TIMED_OUT", "TOPIC_AUTHORIZATION_FAILED", "_TRANSPORT"])
def test_a_refused_letter_is_kept_and_sent_again_after_the_pause(error: str) -> None:
    rig = Rig(ack=error)
    letter, ticket = rig.letter()
    rig.outbox.write(letter, ticket)
    rig.outbox.serve()
    assert rig.health.dead_letters_failing
    assert rig.tracker.records_in_flight == 1
    rig.clock.advance(RETRY - 0.01)
    rig.outbox.serve()
    assert len(rig.producer.sent) == 1  # not before the pause
    rig.producer.ack = "ok"
    rig.clock.advance(0.01)
    rig.outbox.serve()  # resends
    assert len(rig.producer.sent) == 2
    rig.outbox.serve()  # acknowledged
    assert rig.tracker.records_in_flight == 0
    assert not rig.health.dead_letters_failing
    assert rig.written() == 1


def test_a_refused_letter_of_a_revoked_partition_is_left_to_its_new_owner() -> None:
    rig = Rig(ack="_MSG_TIMED_OUT")
    letter, ticket = rig.letter()
    rig.outbox.write(letter, ticket)
    rig.outbox.serve()
    rig.tracker.revoke(TOPIC, 0)
    rig.producer.ack = "ok"
    rig.clock.advance(RETRY)
    rig.outbox.serve()
    assert len(rig.producer.sent) == 1


def test_a_large_letter_is_cut_to_fit_and_its_value_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(max_record_bytes=16_384)
    letter, ticket = rig.letter(value=PHONE * 4000)
    with caplog.at_level(logging.WARNING):
        rig.outbox.write(letter, ticket)
    _key, value, headers = rig.producer.sent[0]
    assert value is not None
    assert len(value) < 16_384
    assert VALUE_TRUNCATED_HEADER in {name for name, _ in headers}
    assert "cut to fit" in caplog.text
    assert PHONE.decode() not in caplog.text
    rig.outbox.serve()
    assert rig.tracker.records_in_flight == 0


def test_a_letter_that_can_never_fit_waits_and_is_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig(max_record_bytes=600)
    with caplog.at_level(logging.ERROR):
        for offset in range(3):
            rig.outbox.write(*rig.letter(offset))
        rig.clock.advance(RETRY)
        rig.outbox.serve()  # tried again: still does not fit
    assert rig.producer.sent == []
    assert rig.health.dead_letters_failing
    assert rig.tracker.records_in_flight == 3
    assert caplog.text.count("do not fit") == 1


def test_flush_says_how_many_are_still_unacknowledged() -> None:
    rig = Rig(ack=None)
    for offset in range(2):
        rig.outbox.write(*rig.letter(offset))
    assert rig.outbox.flush(0.1) == 2
    rig.producer.ack = "ok"
    assert rig.outbox.flush(0.1) == 0
