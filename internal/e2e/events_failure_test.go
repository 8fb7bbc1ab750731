package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/fx"

	"github.com/flashsale/flashsale/internal/adapters/kafka"
	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
	"github.com/flashsale/flashsale/internal/testutil"
)

// consumerGroups are the three groups on order.confirmed.
var consumerGroups = []string{app.ConsumerEmail, app.ConsumerAnalytics, app.ConsumerInventorySync}

// flakyMailer is the mail server refusing every mail while down. It counts the mails it
// delivered by id: the file mailer rewrites the same file for a mail sent twice, so files alone
// would hide a duplicate.
type flakyMailer struct {
	ports.Mailer
	down    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	sent    map[string]int
}

func newFlakyMailer() *flakyMailer { return &flakyMailer{sent: map[string]int{}} }

func (m *flakyMailer) Send(ctx context.Context, mail domain.Mail) error {
	if m.down.Load() {
		m.refused.Add(1)
		return errors.New("smtp: dial tcp: connection refused")
	}
	if err := m.Mailer.Send(ctx, mail); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent[mail.ID]++
	return nil
}

// sends is how many mails went out and how many distinct ones.
func (m *flakyMailer) sends() (total, distinct int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.sent {
		total += n
	}
	return total, len(m.sent)
}

func (m *flakyMailer) option() fx.Option {
	return fx.Decorate(func(next ports.Mailer) ports.Mailer { m.Mailer = next; return m })
}

// purchaseMany places n purchases round-robin over the shoppers (1 to 3 units each) and
// returns the order ids and the units bought.
func purchaseMany(t *testing.T, sys *testutil.System, c *testutil.Client, saleID uuid.UUID, shoppers []domain.User,
	n int, prefix string) ([]uuid.UUID, int) {
	t.Helper()
	tokens := make([]string, len(shoppers))
	for i, u := range shoppers {
		tokens[i] = sys.TokenFor(t, u)
	}
	ids := make([]uuid.UUID, 0, n)
	units := 0
	for i := range n {
		qty := 1 + i%3
		r := buy(t, c, tokens[i%len(tokens)], saleID, fmt.Sprintf("%s-%d", prefix, i), qty)
		if r.Status != http.StatusAccepted {
			t.Fatalf("purchase %d: %d %s", i, r.Status, r.Body)
		}
		ids = append(ids, uuid.MustParse(r.JSON(t)["id"].(string)))
		units += qty
	}
	return ids, units
}

// waitConfirmed waits until every order is durable and confirmed in PostgreSQL.
func waitConfirmed(t *testing.T, sys *testutil.System, ids []uuid.UUID) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d orders to be confirmed in PostgreSQL", len(ids)), func() bool {
		for _, id := range ids {
			o, err := sys.Store.Order(context.Background(), sys.Tenant.ID, id)
			if err != nil || o.Status != domain.OrderConfirmed {
				return false
			}
		}
		return true
	})
}

// saleFigures reads what the analytics and inventory-sync consumers hold for the sale.
func saleFigures(t *testing.T, sys *testutil.System, saleID uuid.UUID) (stats domain.SaleStats, sold int, counted bool) {
	t.Helper()
	ctx := context.Background()
	stats, err := sys.Store.SaleStats(ctx, sys.Tenant.ID, saleID)
	if err != nil {
		t.Fatal(err)
	}
	sold, counted, err = sys.Store.SoldCounter(ctx, sys.Tenant.ID, saleID)
	if err != nil {
		t.Fatal(err)
	}
	return stats, sold, counted
}

// waitFigures waits until analytics counted orders/units and inventory-sync units.
func waitFigures(t *testing.T, sys *testutil.System, saleID uuid.UUID, orders, units int) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("analytics to count %d orders / %d units", orders, units), func() bool {
		s, err := sys.Store.SaleStats(context.Background(), sys.Tenant.ID, saleID)
		return err == nil && s.Orders == orders && s.Units == units
	})
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("inventory-sync to count %d units", units), func() bool {
		sold, ok, err := sys.Store.SoldCounter(context.Background(), sys.Tenant.ID, saleID)
		return err == nil && ok && sold == units
	})
}

func mailFiles(t *testing.T, sys *testutil.System) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(sys.Config.MailDir, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkOneMailPerOrder: exactly one .eml per order, named after the order's event id and
// naming the order in its text.
func checkOneMailPerOrder(t *testing.T, sys *testutil.System, ids []uuid.UUID) {
	t.Helper()
	files := mailFiles(t, sys)
	if len(files) != len(ids) {
		t.Fatalf("%d mail files, want %d", len(files), len(ids))
	}
	for _, id := range ids {
		eventID := domain.OrderConfirmedEvent(domain.Order{ID: id}, time.Time{}).ID
		b, err := os.ReadFile(filepath.Join(sys.Config.MailDir, eventID.String()+".eml"))
		if err != nil {
			t.Fatalf("mail of order %s: %v", id, err)
		}
		if !strings.Contains(string(b), id.String()) {
			t.Fatalf("the mail of order %s does not name it:\n%s", id, b)
		}
	}
}

func processedCount(t *testing.T, sys *testutil.System, group string) int {
	t.Helper()
	var n int
	if err := sys.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM processed_events WHERE consumer = $1", group).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// kafkaInspector reads the embedded broker from the outside: watermarks, the consumer groups'
// committed offsets, the dead-letter topic.
type kafkaInspector struct {
	sys   *testutil.System
	c     *ckafka.Consumer
	admin *ckafka.AdminClient
}

func newKafkaInspector(t *testing.T, sys *testutil.System) *kafkaInspector {
	t.Helper()
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers": sys.BrokerAddr(), "group.id": "e2e-inspector-" + uuid.NewString(),
		"enable.auto.commit": false, "log_level": 4, "enable.metrics.push": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := ckafka.NewAdminClientFromConsumer(c)
	if err != nil {
		_ = c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(); _ = c.Close() })
	return &kafkaInspector{sys: sys, c: c, admin: admin}
}

// highWatermarks are the end offsets of order.confirmed's partitions.
func (k *kafkaInspector) highWatermarks() ([]int64, error) {
	hw := make([]int64, k.sys.Config.KafkaPartitions)
	for p := range hw {
		_, high, err := k.c.QueryWatermarkOffsets(domain.TopicOrderConfirmed, int32(p), 10000)
		if err != nil {
			return nil, err
		}
		hw[p] = high
	}
	return hw, nil
}

func (k *kafkaInspector) published(t *testing.T) int64 {
	t.Helper()
	hw, err := k.highWatermarks()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, h := range hw {
		n += h
	}
	return n
}

// committed are the group's committed offsets on order.confirmed (0 where none).
func (k *kafkaInspector) committed(group string) ([]int64, error) {
	topic := domain.TopicOrderConfirmed
	parts := make([]ckafka.TopicPartition, k.sys.Config.KafkaPartitions)
	for p := range parts {
		parts[p] = ckafka.TopicPartition{Topic: &topic, Partition: int32(p)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := k.admin.ListConsumerGroupOffsets(ctx, []ckafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		return nil, err
	}
	if len(res.ConsumerGroupsTopicPartitions) != 1 {
		return nil, fmt.Errorf("offsets of %s: %v", group, res)
	}
	out := make([]int64, len(parts))
	for _, tp := range res.ConsumerGroupsTopicPartitions[0].Partitions {
		if tp.Error != nil {
			return nil, tp.Error
		}
		if tp.Offset >= 0 {
			out[tp.Partition] = int64(tp.Offset)
		}
	}
	return out, nil
}

// waitAllConsumed waits until every consumer group has committed past every message on
// order.confirmed: whatever the topic holds has been applied (offsets are stored only after
// a message was applied or dead-lettered).
func (k *kafkaInspector) waitAllConsumed(t *testing.T) {
	t.Helper()
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last seen: %s", last)
		}
	}()
	testutil.WaitFor(t, 60*time.Second, "every consumer group to commit past the end of order.confirmed", func() bool {
		hw, err := k.highWatermarks()
		if err != nil {
			last = err.Error()
			return false
		}
		for _, g := range consumerGroups {
			off, err := k.committed(g)
			if err != nil {
				last = err.Error()
				return false
			}
			for p := range hw {
				if off[p] < hw[p] {
					last = fmt.Sprintf("%s at %v, end %v", g, off, hw)
					return false
				}
			}
		}
		return true
	})
}

// readDLQ reads the whole dead-letter topic (one partition).
func (k *kafkaInspector) readDLQ(t *testing.T) []*ckafka.Message {
	t.Helper()
	_, high, err := k.c.QueryWatermarkOffsets(domain.TopicOrderConfirmedDLQ, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if high == 0 {
		return nil
	}
	r, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers": k.sys.BrokerAddr(), "group.id": "e2e-dlq-reader-" + uuid.NewString(),
		"enable.auto.commit": false, "log_level": 4, "enable.metrics.push": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	topic := domain.TopicOrderConfirmedDLQ
	if err := r.Assign([]ckafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: ckafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	var out []*ckafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for int64(len(out)) < high {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d dead letters", len(out), high)
		}
		m, err := r.ReadMessage(time.Second)
		if err != nil {
			continue // a timeout or a transient error
		}
		out = append(out, m)
	}
	return out
}

func headerMap(m *ckafka.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}

// TestEmailOutageDoesNotFailPurchases: the mail server is down during a sale. Purchases,
// analytics and the inventory sync carry on; the mails wait (retried, never dead-lettered) and
// all go out, once each, when the server is back.
func TestEmailOutageDoesNotFailPurchases(t *testing.T) {
	t.Parallel()
	mailer := newFlakyMailer()
	mailer.down.Store(true)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{mailer.option()}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 200, 20, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 4, domain.RoleShopper)
	kin := newKafkaInspector(t, sys)

	ids, units := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 20, "mail-outage")
	waitConfirmed(t, sys, ids)
	waitFigures(t, sys, sale.Sale.ID, 20, units)
	testutil.WaitFor(t, 30*time.Second, "the email consumer to try (and fail) to send", func() bool {
		return mailer.refused.Load() >= 3
	})
	if files := mailFiles(t, sys); len(files) != 0 {
		t.Fatalf("mail files while the mail server is down: %v", files)
	}
	if total, _ := mailer.sends(); total != 0 {
		t.Fatalf("%d mails sent while the mail server is down", total)
	}
	if n := processedCount(t, sys, app.ConsumerEmail); n != 0 {
		t.Fatalf("the email consumer recorded %d events as processed without sending them", n)
	}

	mailer.down.Store(false) // the mail server is back
	testutil.WaitFor(t, 60*time.Second, "the 20 delayed mails", func() bool {
		_, distinct := mailer.sends()
		return distinct == 20
	})
	kin.waitAllConsumed(t)
	checkOneMailPerOrder(t, sys, ids)
	if total, distinct := mailer.sends(); total != 20 || distinct != 20 {
		t.Fatalf("mails sent %d (%d distinct), want 20 once each", total, distinct)
	}
	if n := processedCount(t, sys, app.ConsumerEmail); n != 20 {
		t.Fatalf("email processed_events: %d, want 20", n)
	}
	for _, m := range kin.readDLQ(t) {
		if h := headerMap(m); h["dlq-consumer"] == app.ConsumerEmail {
			t.Fatalf("an outage is not poison, yet the email consumer dead-lettered %q (%v)", m.Value, h)
		}
	}
	if stats, sold, _ := saleFigures(t, sys, sale.Sale.ID); stats.Orders != 20 || stats.Units != units || sold != units {
		t.Fatalf("figures after the outage: %+v, sold %d (want 20 orders, %d units)", stats, sold, units)
	}
}

// TestBrokerDownDuringASale: Kafka refuses every produce request during a sale. Purchases
// succeed and the events wait in the outbox; once the broker is back the relay drains it by
// itself and every consumer applies every order exactly once.
func TestBrokerDownDuringASale(t *testing.T) {
	t.Parallel()
	mailer := newFlakyMailer()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{mailer.option()}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 300, 30, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 6, domain.RoleShopper)
	kin := newKafkaInspector(t, sys)
	ctx := context.Background()

	// The broker closes the connection of every produce request while down; everything else
	// (metadata, the consumers' fetches and group traffic) is served.
	cluster := sys.Broker.Cluster()
	var down atomic.Bool
	var refused atomic.Int64
	down.Store(true)
	cluster.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		refused.Add(1)
		return nil, errors.New("broker down for produce"), true
	})

	ids, units := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 30, "broker-down")
	waitConfirmed(t, sys, ids)
	testutil.WaitFor(t, 30*time.Second, "the outbox backlog to reach 30", func() bool {
		pending, _, err := sys.Store.Backlog(ctx)
		return err == nil && pending == 30
	})
	// Every event was tried against the dead broker and failed.
	testutil.WaitFor(t, 60*time.Second, "the relay to fail to publish every event", func() bool {
		var failed int
		err := sys.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox
			WHERE published_at IS NULL AND attempts > 0 AND last_error IS NOT NULL`).Scan(&failed)
		return err == nil && failed == 30
	})
	if refused.Load() == 0 {
		t.Fatal("no produce request reached the broker")
	}
	if n := kin.published(t); n != 0 {
		t.Fatalf("%d messages on order.confirmed while the broker refuses produce requests", n)
	}
	if stats, sold, counted := saleFigures(t, sys, sale.Sale.ID); stats.Orders != 0 || counted {
		t.Fatalf("consumers saw events during the outage: %+v, sold %d", stats, sold)
	}
	if files := mailFiles(t, sys); len(files) != 0 {
		t.Fatalf("mails during the outage: %v", files)
	}
	for _, g := range consumerGroups {
		if n := processedCount(t, sys, g); n != 0 {
			t.Fatalf("%s processed %d events during the outage", g, n)
		}
	}
	if pending, _, err := sys.Store.Backlog(ctx); err != nil || pending != 30 {
		t.Fatalf("outbox backlog %d, %v; want 30", pending, err)
	}

	down.Store(false) // the broker is back; nobody pokes the relay
	testutil.WaitFor(t, 60*time.Second, "the relay to drain the outbox", func() bool {
		pending, _, err := sys.Store.Backlog(ctx)
		return err == nil && pending == 0
	})
	waitFigures(t, sys, sale.Sale.ID, 30, units)
	testutil.WaitFor(t, 60*time.Second, "30 mails", func() bool {
		_, distinct := mailer.sends()
		return distinct == 30
	})
	kin.waitAllConsumed(t)
	t.Logf("produce requests refused: %d; messages on order.confirmed: %d", refused.Load(), kin.published(t))

	// Counted exactly once everywhere.
	stats, sold, _ := saleFigures(t, sys, sale.Sale.ID)
	if stats.Orders != 30 || stats.Units != units || stats.RevenueCents != int64(units)*1999 || sold != units {
		t.Fatalf("figures: %+v, sold %d; want 30 orders, %d units", stats, sold, units)
	}
	checkOneMailPerOrder(t, sys, ids)
	if total, distinct := mailer.sends(); total != 30 || distinct != 30 {
		t.Fatalf("mails sent %d (%d distinct), want 30 once each", total, distinct)
	}
	for _, g := range consumerGroups {
		if n := processedCount(t, sys, g); n != 30 {
			t.Fatalf("%s processed_events: %d, want 30", g, n)
		}
	}
	if dl := kin.readDLQ(t); len(dl) != 0 {
		t.Fatalf("%d dead letters after a broker outage, e.g. %v", len(dl), headerMap(dl[0]))
	}
	wantNoDrift(t, sys, sale.Sale.ID, units)
}

// TestRedeliveredEventIsCountedOnce: the same order.confirmed event published a second time
// (a relay that crashed after the broker's ack and before marking the row) reaches every
// consumer again and changes nothing.
func TestRedeliveredEventIsCountedOnce(t *testing.T) {
	t.Parallel()
	mailer := newFlakyMailer()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{mailer.option()}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 50, 5, -time.Second, time.Hour)
	shopper := sys.CreateUsers(t, 1, domain.RoleShopper)[0]
	kin := newKafkaInspector(t, sys)
	ctx := context.Background()

	r := buy(t, c, sys.TokenFor(t, shopper), sale.Sale.ID, "redelivered-1", 3)
	if r.Status != http.StatusAccepted {
		t.Fatalf("purchase: %d %s", r.Status, r.Body)
	}
	orderID := uuid.MustParse(r.JSON(t)["id"].(string))
	waitFigures(t, sys, sale.Sale.ID, 1, 3)
	testutil.WaitFor(t, 30*time.Second, "the order mail", func() bool { _, n := mailer.sends(); return n == 1 })
	kin.waitAllConsumed(t)
	if n := kin.published(t); n != 1 {
		t.Fatalf("%d messages on order.confirmed after one order", n)
	}

	// Publish the outbox row again, as the relay would.
	var ev domain.Event
	var published *time.Time
	if err := sys.Pool.QueryRow(ctx, `SELECT id, tenant_id, topic, key, type, payload, created_at, published_at
		FROM outbox WHERE key = $1`, orderID.String()).Scan(
		&ev.ID, &ev.TenantID, &ev.Topic, &ev.Key, &ev.Type, &ev.Payload, &ev.CreatedAt, &published); err != nil {
		t.Fatal(err)
	}
	if published == nil {
		t.Fatal("the outbox row is not marked published")
	}
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: sys.Broker.Addr(), ClientID: "e2e-redeliver",
		DeliveryTimeout: 10 * time.Second}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(5 * time.Second)
	if err := p.Publish(ctx, []domain.Event{ev}); err != nil {
		t.Fatalf("publish the duplicate: %v", err)
	}
	if n := kin.published(t); n != 2 {
		t.Fatalf("%d messages on order.confirmed after the duplicate, want 2", n)
	}
	kin.waitAllConsumed(t) // every group has applied the duplicate too

	stats, sold, _ := saleFigures(t, sys, sale.Sale.ID)
	if stats.Orders != 1 || stats.Units != 3 || stats.RevenueCents != 3*1999 || sold != 3 {
		t.Fatalf("figures after the duplicate: %+v, sold %d; want 1 order, 3 units", stats, sold)
	}
	if total, distinct := mailer.sends(); total != 1 || distinct != 1 {
		t.Fatalf("mails sent %d (%d distinct) after the duplicate, want 1", total, distinct)
	}
	checkOneMailPerOrder(t, sys, []uuid.UUID{orderID})
	for _, g := range consumerGroups {
		if n := processedCount(t, sys, g); n != 1 {
			t.Fatalf("%s processed_events: %d, want 1", g, n)
		}
	}
	if dl := kin.readDLQ(t); len(dl) != 0 {
		t.Fatalf("a duplicate is not poison, yet %d dead letters: %v", len(dl), headerMap(dl[0]))
	}
}

// TestPoisonMessageGoesToDLQAndPartitionMovesOn: every partition starts with two poison
// messages (bytes that are not JSON, and an event of an unknown version). Each consumer group
// tries each a few times, parks it on the DLQ unchanged with the reason, and goes on to apply
// the real orders behind it.
func TestPoisonMessageGoesToDLQAndPartitionMovesOn(t *testing.T) {
	t.Parallel()
	mailer := newFlakyMailer()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Options: []fx.Option{mailer.option()}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 100, 20, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 3, domain.RoleShopper)
	kin := newKafkaInspector(t, sys)
	if sys.Config.PoisonAttempts != 3 {
		t.Fatalf("CONSUMER_POISON_ATTEMPTS is %d, the test expects the default 3", sys.Config.PoisonAttempts)
	}

	garbage := []byte("\xff\x00not json at all\xfe{")
	// A well-formed event of a version this code does not know, about a real sale and buyer:
	// applied by mistake, it would show in the figures.
	v99, err := json.Marshal(map[string]any{
		"eventId": uuid.NewString(), "type": domain.EventOrderConfirmed, "version": 99,
		"occurredAt": time.Now().UTC(), "tenantId": sys.Tenant.ID, "orderId": uuid.NewString(),
		"saleId": sale.Sale.ID, "userId": shoppers[0].ID, "quantity": 7, "unitPriceCents": 1999,
		"amountCents": 7 * 1999, "currency": "EUR", "orderedAt": time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	poisons := map[string][]byte{"garbage": garbage, "v99": v99}

	prod, err := ckafka.NewProducer(&ckafka.ConfigMap{"bootstrap.servers": sys.Broker.Addr(),
		"log_level": 4, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	type origin struct {
		partition int32
		offset    int64
	}
	produced := map[string]origin{} // "<name>/<partition>" -> where it landed
	topic := domain.TopicOrderConfirmed
	for p := range int32(sys.Config.KafkaPartitions) {
		for _, name := range []string{"garbage", "v99"} {
			reports := make(chan ckafka.Event, 1)
			if err := prod.Produce(&ckafka.Message{
				TopicPartition: ckafka.TopicPartition{Topic: &topic, Partition: p},
				Key:            []byte("poison-key"), Value: poisons[name],
				Headers: []ckafka.Header{{Key: "origin", Value: []byte("e2e-" + name)}},
			}, reports); err != nil {
				t.Fatal(err)
			}
			select {
			case e := <-reports:
				m := e.(*ckafka.Message)
				if m.TopicPartition.Error != nil {
					t.Fatalf("produce %s: %v", name, m.TopicPartition.Error)
				}
				produced[fmt.Sprintf("%s/%d", name, p)] = origin{m.TopicPartition.Partition, int64(m.TopicPartition.Offset)}
			case <-time.After(30 * time.Second):
				t.Fatalf("produce %s: no delivery report", name)
			}
		}
	}
	for k, o := range produced {
		// Every partition was empty: the poison is at its head, ahead of every order.
		want := int64(0) // garbage first, then v99
		if strings.HasPrefix(k, "v99/") {
			want = 1
		}
		if o.offset != want {
			t.Fatalf("%s landed at %+v, want offset %d", k, o, want)
		}
	}

	// Real orders, until every partition has at least one behind its poison (orders are keyed
	// by their random id).
	var ids []uuid.UUID
	units := 0
	for round := 0; ; round++ {
		more, u := purchaseMany(t, sys, c, sale.Sale.ID, shoppers, 6, fmt.Sprintf("after-poison-%d", round))
		ids, units = append(ids, more...), units+u
		waitConfirmed(t, sys, ids)
		testutil.WaitFor(t, 30*time.Second, "the relay to publish the orders", func() bool {
			pending, _, err := sys.Store.Backlog(context.Background())
			return err == nil && pending == 0
		})
		hw, err := kin.highWatermarks()
		if err != nil {
			t.Fatal(err)
		}
		covered := true
		for _, h := range hw {
			covered = covered && h > int64(len(poisons))
		}
		if covered {
			t.Logf("order.confirmed end offsets (%d poison each, then orders): %v", len(poisons), hw)
			break
		}
		if round == 5 {
			t.Fatalf("some partition got no order after %d purchases: %v", len(ids), hw)
		}
	}
	waitFigures(t, sys, sale.Sale.ID, len(ids), units)
	testutil.WaitFor(t, 60*time.Second, "the mails of the real orders", func() bool {
		_, n := mailer.sends()
		return n == len(ids)
	})
	kin.waitAllConsumed(t)

	stats, sold, _ := saleFigures(t, sys, sale.Sale.ID)
	if stats.Orders != len(ids) || stats.Units != units || sold != units {
		t.Fatalf("figures: %+v, sold %d; want %d orders, %d units (the v99 event must not count)", stats, sold, len(ids), units)
	}
	checkOneMailPerOrder(t, sys, ids)
	if total, _ := mailer.sends(); total != len(ids) {
		t.Fatalf("mails sent %d, want %d", total, len(ids))
	}
	for _, g := range consumerGroups {
		if n := processedCount(t, sys, g); n != len(ids) {
			t.Fatalf("%s processed_events: %d, want %d", g, n, len(ids))
		}
	}

	// The DLQ: each poison message once per group, unchanged, with why.
	dlq := kin.readDLQ(t)
	want := len(poisons) * sys.Config.KafkaPartitions * len(consumerGroups)
	if len(dlq) != want {
		t.Fatalf("%d dead letters, want %d", len(dlq), want)
	}
	seen := map[string]int{}
	for _, m := range dlq {
		h := headerMap(m)
		name := strings.TrimPrefix(h["origin"], "e2e-")
		o, ok := produced[name+"/"+h["dlq-source-partition"]]
		if !ok {
			t.Fatalf("unexpected dead letter %q headers %v", m.Value, h)
		}
		if string(m.Value) != string(poisons[name]) {
			t.Fatalf("dead letter %s changed: %q, want %q", name, m.Value, poisons[name])
		}
		if string(m.Key) != "poison-key" {
			t.Fatalf("dead letter %s key %q", name, m.Key)
		}
		if h["dlq-attempts"] != strconv.Itoa(sys.Config.PoisonAttempts) || h["dlq-source-topic"] != domain.TopicOrderConfirmed ||
			h["dlq-source-offset"] != strconv.FormatInt(o.offset, 10) || h["dlq-source-partition"] != strconv.Itoa(int(o.partition)) ||
			!strings.Contains(h["dlq-error"], "decode "+domain.EventOrderConfirmed) {
			t.Fatalf("dead letter %s headers: %v (produced at %+v)", name, h, o)
		}
		seen[h["dlq-consumer"]+" "+name+"/"+h["dlq-source-partition"]]++
	}
	for _, g := range consumerGroups {
		for k := range produced {
			if n := seen[g+" "+k]; n != 1 {
				t.Fatalf("%s dead-lettered %s %d times, want once (all: %v)", g, k, n, seen)
			}
		}
	}
}
