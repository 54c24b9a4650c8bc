"""`vibes-bridge replay` over letters that are not plain source records, as subprocesses.

The receiver's own ``invalid_callback`` letters share the dead-letter topic with
the run's letters; letters whose coordinates Kafka could not hold must never be
rebuilt (they would be sent under a new event id); ``--since``/``--until`` out
of range is a usage error of one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from bridge.dead_letters import VALUE_TRUNCATED_HEADER, dead_letter, fit_letter
from bridge.errors import EventRejected
from bridge.kafka.sizes import record_size
from bridge.records import SourceRecord
from tests.callbacks.support import receiver_url, with_callbacks
from tests.support.bridge_service import default_event_id, run_replay
from tests.support.kafka import produce, read_all
from tests.support.service import ORDER_RULES, ServiceSetup, orders
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

MAPPING_RULES = """\
rules:
  - name: order-update
    topic: {topic}
    event_type: order_update
    recipient: {{external_person_id: {recipient}}}
    event_data: {{order_id: order_id}}
"""
INVALID_BODIES = (b"{not json", b'{"callback_type": "something_else"}')


def _dead_letters_with_invalid_callbacks(
    setup: ServiceSetup, callbacks_topic: str
) -> tuple[Path, list[Any]]:
    """One mapping-error letter from `run`, then two invalid callbacks from its receiver."""
    records: list[tuple[bytes | None, Any]] = list(orders(3))
    records.insert(1, (b"buyer", {"order_id": "o-b", "buyer_id": "b-1"}))  # offset 1
    produce(setup.bootstrap, setup.topic, records)
    rules = MAPPING_RULES.format(topic=setup.topic, recipient="customer_id")
    bridge = setup.start(with_callbacks(setup.config(rules=rules), callbacks_topic))
    wait_until(
        lambda: bridge.metric("vibes_bridge_records_committed_total") == 4,
        90,
        "every record finished and committed",
    )
    with httpx.Client(timeout=30) as client:
        for body in INVALID_BODIES:  # the receiver answers only once the letter is stored
            assert client.post(receiver_url(bridge), content=body).status_code == 200
    assert bridge.metric("vibes_bridge_dead_letters_total") == 3
    assert bridge.stop() == 0
    letters = read_all(setup.bootstrap, setup.dead_letter_topic, 3)
    fixed = setup.config(
        "fixed.yaml",
        rules=MAPPING_RULES.format(topic=setup.topic, recipient='"customer_id || buyer_id"'),
    )
    return fixed, letters


def test_invalid_callbacks_are_counted_apart_never_sent_and_selectable(
    service: Callable[..., ServiceSetup], new_topic: Callable[..., str]
) -> None:
    setup = service(partitions=1)
    fixed, letters = _dead_letters_with_invalid_callbacks(setup, new_topic(1))
    reasons = [dict(m.headers())["bridge.error.reason"] for m in letters]
    assert sorted(reasons) == [b"invalid_callback", b"invalid_callback", b"mapping_error"]
    positions = sorted(
        f"{setup.dead_letter_topic}[0]@{m.offset()}"
        for m in letters
        if dict(m.headers())["bridge.error.reason"] == b"invalid_callback"
    )
    received = setup.control.stats()["received"]

    listed = run_replay(fixed, "--reason", "invalid_callback", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""  # nothing would be sent
    assert "selected: 0, passed over by the filters: 1" in listed.stderr
    assert f"never sent): 2, first 2 at {', '.join(positions)}" in listed.stderr
    assert "failed again: 0" in listed.stderr

    replayed = run_replay(fixed)  # every letter: the mapping error is sent, callbacks are not
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "dead letters read: 3, selected: 1, passed over by the filters: 0" in replayed.stdout
    assert "events delivered: 1" in replayed.stdout
    assert "never sent): 2" in replayed.stdout
    assert "failed again: 0" in replayed.stdout
    assert setup.control.stats()["received"] == received + 1
    sent = [e["event_id"] for e in setup.control.events() if e["outcome"] == "sent"]
    assert default_event_id("order-update", setup.topic, 0, 1) in sent

    selected = run_replay(fixed, "--reason", "invalid_callback")  # its own group: lists them
    assert selected.returncode == 0, selected.stderr
    assert "never sent): 2" in selected.stdout
    again = run_replay(fixed, "--reason", "invalid_callback")  # progress was committed
    assert again.returncode == 0, again.stderr
    assert "invalid callbacks" not in again.stdout
    assert setup.control.stats()["received"] == received + 1


def _produce_letters(bootstrap: str, topic: str, letters: list[SourceRecord]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for letter in letters:
        producer.produce(topic, value=letter.value, key=letter.key, headers=list(letter.headers))
    assert producer.flush(30) == 0


def _letter(source: SourceRecord, **replaced: bytes) -> SourceRecord:
    """The dead letter of ``source`` with ``bridge.source.<name>`` headers replaced."""
    written = dead_letter(source, EventRejected(404, "no such account"), rule="order-update")
    names = {f"bridge.source.{name}": value for name, value in replaced.items()}
    headers = tuple((name, names.get(name, value)) for name, value in written.headers)
    return SourceRecord("dlq", 0, 0, written.value, written.key, None, headers)


def test_letters_with_coordinates_kafka_cannot_hold_are_failures_and_never_sent(
    service: Callable[..., ServiceSetup],
) -> None:
    setup = service(partitions=1)
    config = setup.config()
    value = b'{"order_id": "o-1", "customer_id": "c-1", "seq": 1}'
    source = SourceRecord(setup.topic, 0, 5, value, b"c-1", 1_700_000_000_000)
    corrupt = [
        {"partition": str(2**31).encode()},
        {"partition": b"-1"},
        {"offset": str(2**63).encode()},
        {"offset": b"five"},
        {"timestamp": str(2**63 - 1).encode()},
        {"timestamp": b"-5"},
    ]
    letters = [_letter(source), *(_letter(source, **change) for change in corrupt)]
    _produce_letters(setup.bootstrap, setup.dead_letter_topic, letters)

    result = run_replay(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"failed again: {len(corrupt)} (not_a_dead_letter: {len(corrupt)})" in result.stdout
    assert "header bridge.source.partition is out of range" in result.stdout
    assert "events delivered: 1" in result.stdout
    sent = [e["event_id"] for e in setup.control.events()]
    assert sent == [default_event_id("order-update", setup.topic, 0, 5)]  # the good one only


@pytest.mark.parametrize(
    "option",
    [
        ("--since", "99999-01-01"),
        ("--since", "0001-01-01"),
        ("--since", "1969-12-31T23:59:59Z"),
        ("--since", "9999-12-31T23:59:59-01:00"),
        ("--since", "10000000000d"),
        ("--since", "999999999d"),
        ("--since", "800000d"),
        ("--since", "1" * 400 + "d"),
        ("--since", "nan"),
        ("--since", "infd"),
        ("--since", "-inf"),
        ("--until", "0001-01-01T00:00:00+01:00"),
        ("--until", "2h\nago"),
    ],
)
def test_since_and_until_out_of_range_or_malformed_are_one_usage_line(
    tmp_path: Path, option: tuple[str, str]
) -> None:
    """Refused while the options are read: neither a broker nor a valid file is reached."""
    config = tmp_path / "bridge.yaml"
    config.write_text(ORDER_RULES)
    result = run_replay(config, *option)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert option[0] in errors[0]
    assert "1970-01-01" in errors[0]  # the message says the range
    assert len(errors[0]) < 300  # the operator's text is cut, not echoed whole


def test_a_letter_cut_to_fit_is_a_failure_and_never_sent(
    service: Callable[..., ServiceSetup],
) -> None:
    """A cut letter's bytes are not the record's: sending them would text from a fragment."""
    setup = service(partitions=1)
    config = setup.config()
    value = b'{"order_id": "o-1", "customer_id": "c-1", "seq": 1}'
    good = SourceRecord(setup.topic, 0, 5, value, b"c-1", 1_700_000_000_000)
    big = SourceRecord(setup.topic, 0, 6, value + b" " * 4000, b"c-1", 1_700_000_000_000)
    written = dead_letter(big, EventRejected(404, "no such account"), rule="order-update")
    cut = fit_letter(written, record_size(written.key, None, written.headers) + 1000)
    assert cut is not None
    assert any(name == VALUE_TRUNCATED_HEADER for name, _ in cut.headers)
    cut_record = SourceRecord("dlq", 0, 0, cut.value, cut.key, None, tuple(cut.headers))
    _produce_letters(setup.bootstrap, setup.dead_letter_topic, [_letter(good), cut_record])

    result = run_replay(config)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed again: 1 (cut_letter: 1)" in result.stdout
    assert f"source {setup.topic}[0]@6" in result.stdout
    sent = [e["event_id"] for e in setup.control.events()]
    assert sent == [default_event_id("order-update", setup.topic, 0, 5)]
