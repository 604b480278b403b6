"""Kafka plumbing: topics, the outbox relay (store -> Kafka) and the consumer
runtime (Kafka -> idempotent read models, with a dead-letter topic)."""
