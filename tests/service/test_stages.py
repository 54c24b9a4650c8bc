"""Decode, map and decide: events, dead letters with their headers, skips, expiry."""

from __future__ import annotations

import orjson

from bridge.dead_letters import dead_letter
from bridge.errors import DeadLetterReason, EventRejected
from bridge.loading import load_bridge
from bridge.records import SourceRecord
from bridge.service.stages import PreparedRecord, prepare
from tests.support.configs import WriteConfig

RULES = """\
rules:
  - name: order-placed
    topic: shop.orders
    when: "status == 'PLACED'"
    event_type: order_placed
    recipient:
      external_person_id: customer.id
  - name: order-audit
    topic: shop.orders
    when: "status == 'PLACED'"
    event_type: order_audit
    recipient:
      mdn: {path: customer.phone, as: e164, region: US}
"""
NOW_MS = 1_800_000_000_000


def _record(value: object, **overrides: object) -> SourceRecord:
    fields: dict[str, object] = {
        "topic": "shop.orders",
        "partition": 1,
        "offset": 9,
        "value": value if isinstance(value, bytes) else orjson.dumps(value),
        "key": b"order-1",
        "timestamp_ms": NOW_MS - 1000,
        "headers": (("traceparent", b"00-abc"),),
    }
    fields.update(overrides)
    return SourceRecord(**fields)  # type: ignore[arg-type]


def _prepare(
    write_config: WriteConfig, record: SourceRecord, max_age: float | None = None
) -> PreparedRecord:
    loaded = load_bridge(write_config(RULES))
    return prepare(
        record, loaded.decoders, loaded.engine, max_event_age_seconds=max_age, now_ms=NOW_MS
    )


def _headers(prepared: PreparedRecord, index: int = 0) -> dict[str, bytes | None]:
    return dict(prepared.dead_letters[index].headers)


def test_fan_out_with_one_failing_rule_delivers_one_and_dead_letters_the_other(
    write_config: WriteConfig,
) -> None:
    value = {"status": "PLACED", "customer": {"id": "c-1", "phone": "PHONE-XYZ-123"}}
    prepared = _prepare(write_config, _record(value))
    assert [event.rule for event in prepared.events] == ["order-placed"]
    assert prepared.units == 2
    headers = _headers(prepared)
    assert headers["bridge.error.reason"] == b"mapping_error"
    assert headers["bridge.rule"] == b"order-audit"
    assert headers["bridge.source.offset"] == b"9"
    assert headers["bridge.attempts"] == b"0"
    assert headers["traceparent"] == b"00-abc"
    letter = prepared.dead_letters[0]
    assert (letter.key, letter.value) == (b"order-1", orjson.dumps(value))
    assert b"XYZ" not in b"".join(v or b"" for v in headers.values())


def test_undecodable_bytes_become_one_decode_error(write_config: WriteConfig) -> None:
    prepared = _prepare(write_config, _record(b"\xff{garbage"))
    assert prepared.events == ()
    assert _headers(prepared)["bridge.error.reason"] == b"decode_error"
    assert "bridge.rule" not in _headers(prepared)
    assert prepared.dead_letters[0].value == b"\xff{garbage"


def test_unmatched_record_is_skipped(write_config: WriteConfig) -> None:
    prepared = _prepare(write_config, _record({"status": "CANCELLED"}))
    assert (prepared.matched, prepared.units) == (False, 0)


def test_too_old_record_is_expired_per_event_not_sent(write_config: WriteConfig) -> None:
    value = {"status": "PLACED", "customer": {"id": "c-1", "phone": "+14155552671"}}
    old = _record(value, timestamp_ms=NOW_MS - 3 * 86_400_000)
    prepared = _prepare(write_config, old, max_age=86_400)
    assert prepared.events == ()
    assert [dict(letter.headers)["bridge.error.reason"] for letter in prepared.dead_letters] == [
        b"expired",
        b"expired",
    ]
    fresh = _prepare(write_config, _record(value), max_age=86_400)
    assert len(fresh.events) == 2


def test_rejected_dead_letter_carries_status_and_truncated_response() -> None:
    record = _record({"x": 1}, headers=(("bridge.error.reason", b"old"),))
    error = EventRejected(400, "event_type is unknown " * 100, attempts=1)
    letter = dead_letter(record, error, rule="order-placed", attempts=1)
    headers = dict(letter.headers)
    assert headers["bridge.http.status"] == b"400"
    assert headers["bridge.error.reason"] == DeadLetterReason.REJECTED.value.encode()
    assert len(headers["bridge.error.response"] or b"") <= 1024
    assert headers["bridge.attempts"] == b"1"
    names = [name for name, _ in letter.headers]
    assert names.count("bridge.error.reason") == 1  # a replayed letter's old header is replaced


AGED_RULES = """\
rules:
  - name: out-for-delivery
    topic: shop.orders
    max_age: 30m
    event_type: out_for_delivery
    recipient: {external_person_id: customer.id}
  - name: order-placed
    topic: shop.orders
    event_type: order_placed
    recipient: {external_person_id: customer.id}
"""


def _prepare_aged(
    write_config: WriteConfig, age_ms: int, max_age: float | None, *, age_limits: bool = True
) -> PreparedRecord:
    loaded = load_bridge(write_config(AGED_RULES))
    record = _record({"customer": {"id": "c-1"}}, timestamp_ms=NOW_MS - age_ms)
    return prepare(
        record,
        loaded.decoders,
        loaded.engine,
        max_event_age_seconds=max_age,
        now_ms=NOW_MS,
        age_limits=age_limits,
    )


def test_a_rules_max_age_expires_its_events_only(write_config: WriteConfig) -> None:
    hour_old = _prepare_aged(write_config, 3_600_000, max_age=None)
    assert [event.rule for event in hour_old.events] == ["order-placed"]
    [letter] = hour_old.dead_letters
    headers = dict(letter.headers)
    assert headers["bridge.error.reason"] == b"expired"  # the spec's reason
    assert headers["bridge.error.code"] == b"max_event_age"
    assert headers["bridge.rule"] == b"out-for-delivery"
    assert b"max_age" in (headers["bridge.error.message"] or b"")
    minute_old = _prepare_aged(write_config, 60_000, max_age=None)
    assert len(minute_old.events) == 2


def test_a_rules_max_age_overrides_max_event_age_both_ways(write_config: WriteConfig) -> None:
    # delivery.max_event_age of 10 minutes: the rule's 30 minutes still lets it through,
    # while the other rule's events expire under the common limit.
    prepared = _prepare_aged(write_config, 20 * 60_000, max_age=600)
    assert [event.rule for event in prepared.events] == ["out-for-delivery"]
    assert [dict(letter.headers)["bridge.rule"] for letter in prepared.dead_letters] == [
        b"order-placed"
    ]


def test_replay_applies_no_age_limit(write_config: WriteConfig) -> None:
    prepared = _prepare_aged(write_config, 86_400_000, max_age=None, age_limits=False)
    assert len(prepared.events) == 2
    assert prepared.dead_letters == ()
