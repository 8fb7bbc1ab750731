package kafka

import ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// InjectFatalError makes the current librdkafka producer (built now if there is none) fail
// fatally, as one does when the broker lost its sequence state (librdkafka's test hook).
func (p *Producer) InjectFatalError() error {
	c, err := p.client()
	if err != nil {
		return err
	}
	defer p.release(c)
	c.p.TestFatalError(ckafka.ErrOutOfOrderSequenceNumber, "injected by a test")
	return nil
}

// Replacing reports whether the producer is between a fatal error and its replacement.
func (p *Producer) Replacing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur == nil
}

// Producers is how many librdkafka producers exist (built and not yet destroyed).
func (p *Producer) Producers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}
