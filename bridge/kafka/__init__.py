"""The Kafka edge: thin adapters between confluent-kafka and the bridge's plain records."""
