"""Size is a bound, never a crash: `vibes-bridge run` against the real broker.

Undecodable records of many sizes (up to 1.5 MB, above librdkafka's default
``message.max.bytes``) are dead-lettered, cut to what the dead-letter topic takes
with a header saying so; the partition commits past them and the process keeps
running. A dead-letter topic too small for any letter is refused at start, once.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from bridge.kafka.sizes import record_budget, record_size
from tests.support.bridge_service import run_to_exit
from tests.support.kafka import committed_offsets, read_all
from tests.support.service import ServiceFactory, ServiceSetup
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

BIG_SOURCE = {"max.message.bytes": "2000000"}
VALUE_TRUNCATED_HEADER = "bridge.error.value_truncated"


def produce_raw(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Undecodable values (random bytes: not UTF-8 JSON, and lz4 cannot shrink them)."""
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 2_000_000})
    for number, value in enumerate(values):
        producer.produce(topic, value=value, key=f"k-{number}".encode())
    assert producer.flush(30) == 0


def undecodable(size: int) -> bytes:
    return b"\xff" + os.urandom(size - 1)


def headers_of(message: object) -> dict[str, bytes]:
    return dict(message.headers() or [])  # type: ignore[attr-defined]


@pytest.fixture
def sized(service: ServiceFactory) -> Callable[[dict[str, str] | None], ServiceSetup]:
    """A one-partition source taking 2 MB records; a dead-letter topic with the given config."""

    def build(dead_letter_config: dict[str, str] | None) -> ServiceSetup:
        return service(1, source_config=BIG_SOURCE, dead_letter_config=dead_letter_config)

    return build


@pytest.mark.parametrize(
    ("dead_letter_config", "sizes"),
    [
        # The broker's default limit (1,048,588): 1.5 MB and 1.04 MB are cut, 1,000,000
        # (above librdkafka's default message.max.bytes) and the small ones are whole.
        (None, [1_500_000, 1_045_000, 1_000_000, 300_000, 100]),
        # A topic created with a small limit: everything above it is cut.
        ({"max.message.bytes": "10000"}, [1_500_000, 20_000, 10_000, 9_200, 500]),
    ],
    ids=["broker-default", "small-topic"],
)
def test_oversized_undecodable_records_get_cut_dead_letters_and_commit(
    sized: Callable[[dict[str, str] | None], ServiceSetup],
    dead_letter_config: dict[str, str] | None,
    sizes: list[int],
) -> None:
    setup = sized(dead_letter_config)
    values = [undecodable(size) for size in sizes]
    produce_raw(setup.bootstrap, setup.topic, values)
    bridge = setup.start()
    wait_until(
        lambda: committed_offsets(setup.bootstrap, setup.group, setup.topic, 1) == [len(sizes)],
        90,
        "the partition committed past every record",
    )
    assert bridge.running
    letters = read_all(setup.bootstrap, setup.dead_letter_topic, len(sizes))
    assert len(letters) == len(sizes)
    limit = int((dead_letter_config or {}).get("max.message.bytes", "1048588"))
    by_offset = {int(headers_of(m)["bridge.source.offset"]): m for m in letters}
    for offset, original in enumerate(values):
        letter = by_offset[offset]
        headers = headers_of(letter)
        assert headers["bridge.error.reason"] == b"decode_error"
        stored = letter.value()
        assert original.startswith(stored)
        others = [(n, v) for n, v in letter.headers() or [] if n != VALUE_TRUNCATED_HEADER]
        if record_size(letter.key(), original, others) > record_budget(limit):  # cut, said so
            assert len(stored) < len(original)
            assert headers[VALUE_TRUNCATED_HEADER] == str(len(original)).encode()
        else:
            assert stored == original
            assert VALUE_TRUNCATED_HEADER not in headers
    assert bridge.metric("vibes_bridge_dead_letters_total", reason="decode_error") == len(sizes)
    assert bridge.get("/readyz").status_code == 200
    assert bridge.stop() == 0


@pytest.mark.parametrize(
    ("dead_letter_config", "kafka_config", "named"),
    [
        ({"max.message.bytes": "1500"}, "", "max.message.bytes"),
        ({"max.message.bytes": "2500"}, "", "max.message.bytes"),
        (None, "message.max.bytes: 1000\n", "kafka.config.message.max.bytes"),
    ],
    ids=["tiny-topic", "small-topic", "tiny-producer"],
)
def test_a_dead_letter_topic_too_small_for_any_letter_is_refused_at_start_once(
    sized: Callable[[dict[str, str] | None], ServiceSetup],
    dead_letter_config: dict[str, str] | None,
    kafka_config: str,
    named: str,
) -> None:
    setup = sized(dead_letter_config)
    produce_raw(setup.bootstrap, setup.topic, [undecodable(50)])
    config = setup.config(kafka_config=kafka_config)
    for _attempt in range(2):  # a restart says the same, once, and consumes nothing
        result = run_to_exit(config)
        assert result.returncode == 2, result.stdout + result.stderr
        output = result.stdout + result.stderr
        lines = [line for line in output.splitlines() if "dead_letter.topic" in line]
        assert len(lines) == 1, output
        assert named in lines[0]
        assert setup.dead_letter_topic in lines[0]
        assert "Traceback" not in output
    assert committed_offsets(setup.bootstrap, setup.group, setup.topic, 1) == [-1001]
