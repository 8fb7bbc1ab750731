package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/flashsale/flashsale/internal/ports"
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

// ClusterWatcher tells which log the broker holds by its cluster id: the embedded broker takes
// a new one each time it starts empty (in memory), and keeps its directory's otherwise; a Kafka
// cluster keeps its id (and what it acknowledged, acks=all) unless it is recreated.
type ClusterWatcher struct {
	admin   *ckafka.AdminClient
	timeout time.Duration
}

var _ ports.BrokerWatcher = (*ClusterWatcher)(nil)

// NewClusterWatcher connects lazily; each Incarnation asks the broker afresh, waiting at most
// timeout.
func NewClusterWatcher(brokers string, timeout time.Duration) (*ClusterWatcher, error) {
	admin, err := ckafka.NewAdminClient(&ckafka.ConfigMap{"bootstrap.servers": brokers,
		"reconnect.backoff.max.ms": reconnectBackoffMaxMs, "log_level": 4, "enable.metrics.push": false})
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	return &ClusterWatcher{admin: admin, timeout: timeout}, nil
}

// Incarnation implements ports.BrokerWatcher with the broker's cluster id (a DescribeCluster
// request, not librdkafka's cached metadata).
func (w *ClusterWatcher) Incarnation(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	res, err := w.admin.DescribeCluster(ctx, ckafka.SetAdminRequestTimeout(w.timeout))
	if err != nil {
		return "", fmt.Errorf("kafka describe cluster: %w", err)
	}
	if res.ClusterID == nil || *res.ClusterID == "" {
		return "", errors.New("kafka describe cluster: the broker gave no cluster id")
	}
	return *res.ClusterID, nil
}

// Close releases the admin client.
func (w *ClusterWatcher) Close() { w.admin.Close() }
