"""The pure callback facts: parsing, bounded labels, addresses, registration conflicts."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from bridge.vibes.callbacks import (
    VIBES_RANGES,
    InvalidCallback,
    bounded_labels,
    conflicts,
    is_allowed_address,
    label_event_types,
    parse_callback,
    record_timestamp_ms,
    registration_body,
    source_coordinates,
)

NOW = datetime(2026, 1, 10, tzinfo=UTC)
# The configured rules' declared event types, as the receiver is given them.
DECLARED = label_event_types(["order_shipped", "Cart_Abandoned"])


def callback(**action: Any) -> dict[str, Any]:
    return {
        "event_id": "cb-1",
        "callback_type": "event_processed",
        "event_date": "2026-01-10T10:00:00Z",
        "event_processed": {
            "event_id": "e" * 40,
            "event_type": "Order_Shipped",
            "event_data": {"external_person_id": "p-1"},
            "debug_data": {"rule": "r", "topic": "t", "partition": 2, "offset": 7},
            "action": {"type": "routing", "status": "failed", **action},
        },
    }


def test_a_callback_is_parsed_and_its_labels_are_bounded() -> None:
    parsed = parse_callback(orjson.dumps(callback(status_reason="Person Not Subscribed")))
    assert parsed.event_id == "e" * 40
    assert parsed.callback_id == "cb-1"
    assert bounded_labels(parsed, DECLARED) == (
        "order_shipped",
        "routing",
        "failed",
        "person_not_subscribed",
    )
    assert source_coordinates(parsed) == {
        "rule": "r",
        "topic": "t",
        "partition": "2",
        "offset": "7",
    }


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        (None, "none"),
        ("", "none"),
        ("accepted_by_event_triggered_message", "accepted_by_event_triggered_message"),
        ("something Vibes never published", "other"),
        ("x" * 10_000, "other"),
    ],
)
def test_an_unknown_reason_is_other(reason: str | None, label: str) -> None:
    parsed = parse_callback(orjson.dumps(callback(status_reason=reason)))
    assert bounded_labels(parsed, DECLARED)[3] == label


def with_event_type(event_type: str) -> dict[str, Any]:
    body = callback()
    body["event_processed"]["event_type"] = event_type
    return body


@pytest.mark.parametrize(
    ("event_type", "label"),
    [
        ("order_shipped", "order_shipped"),
        ("ORDER_SHIPPED", "order_shipped"),
        ("cart_abandoned", "cart_abandoned"),  # declared in another case
        ("order_shipped_x", "other"),
        ("forged-1", "other"),
        ("x" * 64, "other"),
        ("x" * 200, "other"),
    ],
)
def test_the_event_type_label_is_a_declared_type_or_other(event_type: str, label: str) -> None:
    parsed = parse_callback(orjson.dumps(with_event_type(event_type)))
    assert bounded_labels(parsed, DECLARED)[0] == label


def test_forged_event_types_make_at_most_the_declared_labels_and_other() -> None:
    forged = [f"forged_{n}" for n in range(300)] + ["Order_Shipped", "cart_ABANDONED"]
    labels = {
        bounded_labels(parse_callback(orjson.dumps(with_event_type(t))), DECLARED)[0]
        for t in forged
    }
    assert labels == {"order_shipped", "cart_abandoned", "other"}


def test_without_declared_types_every_event_type_is_other() -> None:
    parsed = parse_callback(orjson.dumps(callback()))
    assert bounded_labels(parsed, frozenset())[0] == "other"


def test_unknown_action_types_and_statuses_are_other() -> None:
    body = callback()
    body["event_processed"]["action"] = {"type": "teleport", "status": "vanished"}
    labels = bounded_labels(parse_callback(orjson.dumps(body)), DECLARED)
    assert labels[1:3] == ("other", "other")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        orjson.dumps({**callback(), "callback_type": "inbound_message"}),
        orjson.dumps({"callback_type": "event_processed"}),
        orjson.dumps({**callback(), "event_processed": {"event_id": "x" * 41}}),
        orjson.dumps(
            {
                "callback_type": "event_processed",
                "event_processed": {"event_id": "a", "event_type": "b c"},
            }
        ),
        orjson.dumps(
            {
                "callback_type": "event_processed",
                "event_processed": {"event_id": "a", "event_type": "b"},
            }
        ),
    ],
)
def test_malformed_callbacks_are_refused_without_their_values(body: bytes) -> None:
    with pytest.raises(InvalidCallback) as caught:
        parse_callback(body)
    assert "p-1" not in str(caught.value)


def test_the_record_time_comes_from_debug_data_when_mapped() -> None:
    body = callback()
    assert record_timestamp_ms(parse_callback(orjson.dumps(body))) is None
    body["event_processed"]["debug_data"]["timestamp"] = 1_700_000_000_000
    assert record_timestamp_ms(parse_callback(orjson.dumps(body))) == 1_700_000_000_000


def test_addresses_against_networks() -> None:
    vibes = tuple(ipaddress.ip_network(value) for value in VIBES_RANGES)
    assert is_allowed_address("35.155.139.143", vibes)
    assert is_allowed_address("::ffff:35.155.139.143", vibes)
    assert not is_allowed_address("35.155.139.144", vibes)
    assert not is_allowed_address("not an address", vibes)


def test_registrations_conflict_only_with_the_same_filter_and_overlapping_dates() -> None:
    everything = registration_body("https://x/cb/t")
    shipped = registration_body("https://x/cb/t", event_type="order_shipped")
    existing = [{**everything, "callback_id": "1", "start_date": "2026-01-01T00:00Z"}]
    assert conflicts(everything, existing, now=NOW) == existing
    assert conflicts(shipped, existing, now=NOW) == []
    later = registration_body("https://x/cb/t", start_date="2026-02-01T00:00Z")
    ended = [{**existing[0], "end_date": "2026-01-20T00:00Z"}]
    assert conflicts(later, ended, now=NOW) == []
    assert conflicts(later, existing, now=NOW) == existing


def test_registration_bodies_check_what_vibes_checks() -> None:
    with pytest.raises(ValueError, match="1024"):
        registration_body("https://x/" + "a" * 1100)
    with pytest.raises(ValueError, match="event type"):
        registration_body("https://x/", event_type="no spaces")
