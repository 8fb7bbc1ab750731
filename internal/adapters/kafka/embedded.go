package kafka

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) for local runs and tests,
// used when KAFKA_BROKERS is unset. Real clients (kcat, librdkafka) connect to it over TCP.
//
// With a directory it keeps its log, the consumer groups' offsets and the producers' state
// there (kfake's persistence: written as it goes, reloaded at start, so a killed broker comes
// back with what it had acknowledged, up to what the OS had not yet written when the host
// itself died). Without one it keeps everything in memory: a restart starts empty, under a
// new cluster id, which is how the outbox relay tells that what it published is gone.
type Embedded struct {
	cfg EmbeddedConfig
	log *slog.Logger

	mu      sync.Mutex
	cluster *kfake.Cluster
	addr    string
}

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Port on 127.0.0.1; 0 picks a free port (kept across Restart).
	Port int
	// Dir keeps the broker's state across restarts; empty keeps it in memory.
	Dir string
	// Topics are created at the first start.
	Topics []TopicSpec
}

// TopicSpec is a topic to create at start.
type TopicSpec struct {
	Name       string
	Partitions int32
}

// StartEmbedded listens on 127.0.0.1:cfg.Port and creates the topics (those already in
// cfg.Dir are reloaded instead).
func StartEmbedded(cfg EmbeddedConfig, log *slog.Logger) (*Embedded, error) {
	e := &Embedded{cfg: cfg, log: log}
	if err := e.start(cfg.Port); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Embedded) start(port int) error {
	// A fresh id per in-memory incarnation; a directory's own id wins when it has one.
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(),
		kfake.ClusterID("flashsale-embedded-" + uuid.NewString())}
	if e.cfg.Dir != "" {
		opts = append(opts, kfake.DataDir(e.cfg.Dir))
	}
	for _, t := range e.cfg.Topics {
		opts = append(opts, kfake.SeedTopics(t.Partitions, t.Name))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("embedded kafka on port %d: %w", port, err)
	}
	addrs := cluster.ListenAddrs()
	if len(addrs) == 0 {
		cluster.Close()
		return fmt.Errorf("embedded kafka: no listener")
	}
	e.log.Info("embedded kafka broker listening", "addr", addrs[0], "dir", e.cfg.Dir)
	e.mu.Lock()
	e.cluster, e.addr = cluster, addrs[0]
	e.mu.Unlock()
	return nil
}

// Restart stops the broker and starts it again on the same port: from its directory if it
// has one, empty otherwise (what a crashed in-memory broker comes back as).
func (e *Embedded) Restart() error {
	port := e.Port()
	e.Close()
	return e.start(port)
}

// Addr is host:port of the broker, for KAFKA_BROKERS of other processes and for kcat.
func (e *Embedded) Addr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.addr
}

// Port is the port the broker listens on.
func (e *Embedded) Port() int {
	_, p, _ := net.SplitHostPort(e.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Cluster exposes kfake's control hooks (tests use them to take the broker down).
func (e *Embedded) Cluster() *kfake.Cluster {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cluster
}

// Close stops the broker (with a directory, after writing its state there).
func (e *Embedded) Close() { e.Cluster().Close() }
