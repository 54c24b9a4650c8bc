"""explain's pure story: what it keeps, how it joins, what it hides."""

from __future__ import annotations

from typing import Any

import orjson

from bridge.dead_letters import SourceCoordinates, dead_letter
from bridge.errors import DecodeCode, DecodeError, EventRejected
from bridge.explain import Collector, Query, build_story, render_text
from bridge.explain.story import HIDDEN
from bridge.mapping.event_id import coordinates_event_id
from bridge.receipts import Receipt, receipt_record
from bridge.records import SourceRecord

SOURCE = "shop.orders"
TOPICS = {"source": SOURCE, "receipts": "r", "dead_letters": "d", "callbacks": "c"}


def _receipt(event_id: str, offset: int) -> SourceRecord:
    receipt = Receipt(
        event_id,
        "acme",
        "order_update",
        "rule-a",
        200,
        1,
        10,
        20,
        SourceCoordinates(SOURCE, 0, offset, 5),
    )
    key, value, headers = receipt_record(receipt)
    return SourceRecord("r", 0, offset, value, key, 30, tuple(headers))


def _callback(event_id: str, reason: str, offset: int) -> SourceRecord:
    body = {
        "event_id": f"cb-{offset}",
        "callback_type": "event_processed",
        "event_processed": {
            "event_id": event_id,
            "event_type": "order_update",
            "event_data": {"mdn": "+15551234567"},
            "debug_data": {"rule": "rule-a", "topic": SOURCE, "partition": 0, "offset": offset},
            "action": {"type": "routing", "status": "failed", "status_reason": reason},
        },
    }
    return SourceRecord("c", 0, offset, orjson.dumps(body), event_id.encode(), 40)


def _story(collector: Collector, show: bool = False) -> dict[str, Any]:
    return build_story(collector, topics=TOPICS, complete=True, show_person_data=show)


def test_by_key_an_id_a_rule_built_from_the_record_is_hidden_unless_asked_for() -> None:
    collector = Collector(Query(0, 100, topic=SOURCE, key=b"o-1"))
    collector.take_source(SourceRecord(SOURCE, 0, 7, b"{}", b"o-1", 5))
    collector.take_source(SourceRecord(SOURCE, 0, 8, b"{}", b"o-2", 5))
    collector.take_receipt(_receipt("+15551234567", 7))  # an id made of a phone number
    collector.take_receipt(_receipt("other", 8))  # another order's
    collector.take_callback(_callback("+15551234567", "person_not_subscribed", 7))
    story = _story(collector)
    [event] = story["events"]
    assert event["event_id"] == HIDDEN
    assert [step["step"] for step in event["steps"]] == ["record", "mapped", "accepted", "callback"]
    assert event["steps"][3]["meaning"].startswith("not subscribed")
    assert "+1555" not in orjson.dumps(story).decode()
    shown = _story(collector, show=True)
    assert shown["events"][0]["event_id"] == "+15551234567"
    assert shown["events"][0]["steps"][3]["event_data"] == {"mdn": "+15551234567"}
    assert story["read"]["receipts"] == {"topic": "r", "records": 2, "unreadable": 0}


def test_the_bridges_own_ids_are_shown_and_a_record_that_made_no_event_is_told() -> None:
    collector = Collector(Query(0, 100, topic=SOURCE, key=b"o-1"))
    for offset in (7, 9):
        collector.take_source(SourceRecord(SOURCE, 0, offset, b"{}", b"o-1", 5))
    own = coordinates_event_id("rule-a", SOURCE, 0, 7)
    rejected = dead_letter(
        SourceRecord(SOURCE, 0, 7, b"{}", b"o-1", 5),
        EventRejected(404, "no such company", attempts=1),
        rule="rule-a",
        attempts=1,
        event_id=own,
    )
    undecodable = dead_letter(
        SourceRecord(SOURCE, 0, 9, b"x", b"o-1", 5), DecodeError(DecodeCode.INVALID_JSON, "bad")
    )
    for offset, letter in enumerate((rejected, undecodable)):
        collector.take_letter(
            SourceRecord("d", 0, offset, letter.value, letter.key, 50, tuple(letter.headers))
        )
    collector.take_letter(SourceRecord("d", 0, 2, b"junk", None, 50))  # not a letter
    story = _story(collector)
    first, second = story["events"]
    assert first["event_id"] == own
    assert first["steps"][2]["response"] == HIDDEN
    assert (first["steps"][2]["status"], first["steps"][2]["reason"]) == (404, "rejected")
    assert second["event_id"] is None
    assert second["steps"][1]["reason"] == "decode_error"
    assert story["read"]["dead_letters"]["unreadable"] == 1
    assert "record that made no event" in "\n".join(render_text(story))


def test_never_seen_says_so_and_how_much_was_read() -> None:
    collector = Collector(Query(0, 100, event_id="nope"))
    collector.take_receipt(_receipt("other", 1))
    story = _story(collector)
    assert not story["found"]
    lines = list(render_text(story))
    assert lines[0].startswith("event nope: not seen between 1970-01-01T00:00:00.000Z")
    assert "1 receipts (r)" in lines[-1]
