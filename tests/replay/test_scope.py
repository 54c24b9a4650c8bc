"""A replayed record sends only the failed rule's events when the letter names that rule."""

from __future__ import annotations

import textwrap

import orjson

from bridge.loading import load_bridge
from bridge.records import SourceRecord
from bridge.replay.scope import narrow_to_rule
from bridge.service.stages import PreparedRecord, prepare
from tests.support.configs import WriteConfig

RULES = """\
rules:
  - name: first
    topic: shop.orders
    event_type: one
    recipient: {external_person_id: id}
  - name: second
    topic: shop.orders
    event_type: two
    recipient: {external_person_id: other_id}
"""


def _prepared(write_config: WriteConfig, value: dict[str, str]) -> PreparedRecord:
    loaded = load_bridge(write_config(textwrap.dedent(RULES)))
    record = SourceRecord("shop.orders", 0, 3, orjson.dumps(value))
    return prepare(record, loaded.decoders, loaded.engine, max_event_age_seconds=None, now_ms=0)


def _narrow(prepared: PreparedRecord, rule: str | None, current: set[str]) -> PreparedRecord:
    """As replay narrows a record: the pure scope, applied to the prepared work."""
    scoped = narrow_to_rule(prepared.events, prepared.dead_letters, rule, current)
    return prepared if scoped is None else prepared.only(*scoped)


def test_only_the_named_rule_is_replayed(write_config: WriteConfig) -> None:
    prepared = _prepared(write_config, {"id": "a", "other_id": "b"})
    narrowed = _narrow(prepared, "second", {"first", "second"})
    assert [event.rule for event in narrowed.events] == ["second"]
    assert narrowed.matched


def test_the_named_rules_failure_stays_and_others_go(write_config: WriteConfig) -> None:
    prepared = _prepared(write_config, {"other_id": "b"})  # "first" has no recipient
    assert _narrow(prepared, "first", {"first", "second"}).units == 1
    narrowed = _narrow(prepared, "second", {"first", "second"})
    assert (len(narrowed.events), len(narrowed.dead_letters)) == (1, 0)


def test_a_letter_without_a_rule_or_with_a_gone_rule_replays_every_rule(
    write_config: WriteConfig,
) -> None:
    prepared = _prepared(write_config, {"id": "a", "other_id": "b"})
    assert _narrow(prepared, None, {"first", "second"}) == prepared
    assert _narrow(prepared, "renamed", {"first", "second"}) == prepared


def test_a_named_rule_that_no_longer_matches_skips_the_record(write_config: WriteConfig) -> None:
    prepared = _prepared(write_config, {"id": "a"})  # "second" fails, "first" delivers
    narrowed = _narrow(prepared, "first", {"first", "second"})
    assert narrowed.units == 1
    empty = PreparedRecord(prepared.record, (), (), True)
    assert not _narrow(empty, "first", {"first"}).matched
