"""librdkafka settings: the keys the guarantees rest on win over the pass-through."""

from __future__ import annotations

from bridge.config.model import KafkaSettings
from bridge.kafka.config import consumer_config, producer_config


def test_owned_consumer_keys_win_and_are_reported() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="b:9092",
        group_id="g",
        config={
            "enable.auto.commit": True,
            "group.id": "other",
            "security.protocol": "SASL_SSL",
            "auto.offset.reset": "latest",
        },
    )
    built = consumer_config(kafka)
    assert built.settings["enable.auto.commit"] is False
    assert built.settings["enable.auto.offset.store"] is False
    assert built.settings["group.id"] == "g"
    assert built.settings["security.protocol"] == "SASL_SSL"
    assert built.settings["auto.offset.reset"] == "latest"  # a user choice, not a guarantee
    assert len(built.warnings) == 2
    assert all("ignored" in warning for warning in built.warnings)


def test_defaults_earliest_and_cooperative_and_replay_group() -> None:
    built = consumer_config(KafkaSettings(), group_id="replay-group")
    assert built.settings["auto.offset.reset"] == "earliest"
    assert built.settings["partition.assignment.strategy"] == "cooperative-sticky"
    assert built.settings["group.id"] == "replay-group"
    assert built.warnings == ()


def test_producer_is_idempotent_and_drops_consumer_keys() -> None:
    kafka = KafkaSettings(config={"acks": "1", "session.timeout.ms": 10000, "ssl.ca.location": "x"})
    built = producer_config(kafka)
    assert built.settings["enable.idempotence"] is True
    assert built.settings["acks"] == "all"
    assert "session.timeout.ms" not in built.settings
    assert built.settings["ssl.ca.location"] == "x"
    assert built.warnings == (
        "kafka.config.acks is set by the bridge for its producer and was ignored",
    )


def test_with_receipts_the_producer_batches_longer_unless_the_user_said_otherwise() -> None:
    assert producer_config(KafkaSettings()).settings["linger.ms"] == 5
    assert producer_config(KafkaSettings(), receipts=True).settings["linger.ms"] == 50
    own = KafkaSettings(config={"linger.ms": 2})
    assert producer_config(own, receipts=True).settings["linger.ms"] == 2
