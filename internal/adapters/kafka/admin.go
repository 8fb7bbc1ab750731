package kafka

import (
	"context"
	"fmt"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// EnsureTopics creates the topics that do not exist yet (replication 1 on the embedded broker,
// the cluster default otherwise) and leaves existing ones alone.
func EnsureTopics(ctx context.Context, brokers string, topics []TopicSpec) error {
	admin, err := ckafka.NewAdminClient(&ckafka.ConfigMap{"bootstrap.servers": brokers, "log_level": 4, "enable.metrics.push": false})
	if err != nil {
		return fmt.Errorf("kafka admin: %w", err)
	}
	defer admin.Close()
	specs := make([]ckafka.TopicSpecification, len(topics))
	for i, t := range topics {
		specs[i] = ckafka.TopicSpecification{Topic: t.Name, NumPartitions: int(t.Partitions), ReplicationFactor: -1}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	results, err := admin.CreateTopics(ctx, specs)
	if err != nil {
		return fmt.Errorf("kafka create topics at %s: %w", brokers, err)
	}
	for _, r := range results {
		if c := r.Error.Code(); c != ckafka.ErrNoError && c != ckafka.ErrTopicAlreadyExists {
			return fmt.Errorf("kafka create topic %s: %w", r.Topic, r.Error)
		}
	}
	return nil
}
