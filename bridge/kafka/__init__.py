"""The Kafka edge: thin adapters between confluent-kafka and the bridge's plain records."""

# Nothing is re-exported: import from the modules themselves.
__all__: list[str] = []
