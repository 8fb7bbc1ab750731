package kafka

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) for local runs and tests,
// used when KAFKA_BROKERS is unset. Real clients (kcat, librdkafka) connect to it over TCP.
// It keeps everything in memory.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// TopicSpec is a topic to create at start.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// StartEmbedded listens on 127.0.0.1:port (0 picks a free port) and creates the topics.
func StartEmbedded(port int, topics []TopicSpec, log *slog.Logger) (*Embedded, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation()}
	for _, t := range topics {
		opts = append(opts, kfake.SeedTopics(t.Partitions, t.Name))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on port %d: %w", port, err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) == 0 {
		cluster.Close()
		return nil, fmt.Errorf("embedded kafka: no listener")
	}
	log.Info("embedded kafka broker listening", "addr", addrs[0])
	return &Embedded{cluster: cluster, addr: addrs[0]}, nil
}

// Addr is host:port of the broker, for KAFKA_BROKERS of other processes and for kcat.
func (e *Embedded) Addr() string { return e.addr }

// Port is the port the broker listens on.
func (e *Embedded) Port() int {
	_, p, _ := net.SplitHostPort(e.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Cluster exposes kfake's control hooks (tests use them to take the broker down).
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Close stops the broker.
func (e *Embedded) Close() { e.cluster.Close() }
