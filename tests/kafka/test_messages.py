"""The strict Kafka edge: a message without coordinates is refused, never offset 0."""

from __future__ import annotations

import pytest
from confluent_kafka import Message

from bridge.kafka.messages import MalformedMessage, to_source_record


def test_a_complete_message_becomes_a_source_record() -> None:
    message = Message(
        topic="t", partition=3, offset=42, key=b"k", value=b"v", headers=[("h", b"1"), ("s", "x")]
    )
    record = to_source_record(message)
    assert (record.topic, record.partition, record.offset) == ("t", 3, 42)
    assert record.headers == (("h", b"1"), ("s", b"x"))


@pytest.mark.parametrize(
    "fields",
    [
        {"topic": "t", "partition": 0},  # no offset
        {"topic": "t", "partition": 0, "offset": -1001},  # librdkafka's "invalid offset"
        {"partition": 0, "offset": 5},  # no topic
        {"topic": "t", "offset": 5},  # no partition
    ],
)
def test_a_message_without_coordinates_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        to_source_record(Message(value=b"v", **fields))  # type: ignore[arg-type]
