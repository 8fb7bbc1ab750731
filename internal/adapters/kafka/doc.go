// Package kafka publishes and consumes Flashsale's events with confluent-kafka-go (librdkafka,
// cgo): an idempotent producer for the outbox relay, a consumer runner with at-least-once
// offsets and a dead-letter topic, and an embedded Kafka-protocol broker (kfake) for local runs.
package kafka
