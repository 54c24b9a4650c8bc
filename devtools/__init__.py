"""Development-only tools: used by tests, benchmarks, the demo and scripts, never shipped.

The wheel holds ``bridge`` alone (pyproject.toml), so nothing in ``bridge`` may
import from here. ``avro_encode`` writes Avro records (the bridge only reads
them); ``kafka_broker`` starts a real local Kafka broker for tests and
``scripts/kafka-local``.
"""
