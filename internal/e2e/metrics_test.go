package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// scrapeMetrics reads url's /metrics as Prometheus does.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse scrape of %s: %v", url, err)
	}
	return families
}

// seriesValue sums the series of name whose labels include want (counter, gauge, or a
// histogram's count).
func seriesValue(families map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf, ok := families[name]
	if !ok {
		return 0, false
	}
	sum, found := 0.0, false
series:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue series
			}
		}
		found = true
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		default:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// TestMetricsCountABurst: a burst of purchases through the HTTP API, some replayed, some over
// the rate limit, is counted on /metrics exactly as the answers the clients got; the orders'
// time to durable, the live sale's stock, the queues, pools and consumers are exposed; and every
// metric the Grafana dashboard and the alert rules use is one the system exports.
func TestMetricsCountABurst(t *testing.T) {
	t.Parallel()
	const (
		stock, perUserLimit = 10, 2
		users, attempts     = 8, 3
		replays             = 4
		// The burst, one purchase of a sale not started and one replay pass; the last replays
		// are refused.
		ratePerMinute = users*attempts + 2
	)
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true, Configure: func(c *config.Config) {
		c.AdminAddr = "127.0.0.1:0"
		c.RateLimitPurchase = ratePerMinute
		c.InventoryCheck = 500 * time.Millisecond // the drift gauge
		// The replays must meet the rate limit: purchases of a sale the node knows sold out are
		// not counted against it (TestSoldOutAcrossNodes).
		c.SoldOutTTL = 0
	}})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, stock, perUserLimit, -time.Second, time.Hour)
	later := sys.CreateSale(t, stock, perUserLimit, time.Hour, time.Hour)
	shoppers := sys.CreateUsers(t, users, domain.RoleShopper)

	type attempt struct {
		user int
		key  string
		sale string
	}
	var all []attempt
	for i := range users {
		for a := range attempts {
			all = append(all, attempt{i, fmt.Sprintf("metrics-burst-%d-attempt-%d", i, a), sale.Sale.ID.String()})
		}
	}
	all = append(all, attempt{0, "metrics-burst-not-started", later.Sale.ID.String()})
	for i := range replays { // the same request again: the answer is replayed
		all = append(all, attempt{i, fmt.Sprintf("metrics-burst-%d-attempt-0", i), sale.Sale.ID.String()})
	}
	tokens := make([]string, users)
	for i, u := range shoppers {
		tokens[i] = sys.TokenFor(t, u)
	}

	var mu sync.Mutex
	counted := map[string]int{} // outcome -> answers the clients saw
	status202 := 0
	var wg sync.WaitGroup
	// The first use of each key before its replay: replays go after the burst.
	send := func(at attempt) {
		r := c.Do(t, testutil.Request{
			Method: "POST", Path: "/v1/sales/" + at.sale + "/orders", Token: tokens[at.user],
			Header: map[string]string{"Idempotency-Key": at.key}, Body: map[string]any{"quantity": 1},
		})
		mu.Lock()
		defer mu.Unlock()
		if r.Status == http.StatusAccepted {
			status202++
		}
		switch {
		case r.Header.Get("Idempotent-Replayed") == "true":
			counted["replayed"]++
		case r.Status == http.StatusAccepted:
			counted["accepted"]++
		case r.Status == http.StatusTooManyRequests:
			counted["rate_limited"]++
		case r.ProblemType() == "sold-out":
			counted["sold_out"]++
		case r.ProblemType() == "purchase-limit-exceeded":
			counted["limit"]++
		case r.ProblemType() == "sale-not-active":
			counted["not_active"]++
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.ProblemType())
		}
	}
	for _, at := range all[:users*attempts] {
		wg.Go(func() { send(at) })
	}
	wg.Wait()
	for _, at := range all[users*attempts:] {
		send(at)
	}
	t.Logf("%d purchases answered: %v", len(all), counted)
	if counted["accepted"] != stock || counted["rate_limited"] != replays-1 || counted["replayed"] != 1 || counted["not_active"] != 1 {
		t.Fatalf("answers %v: want %d accepted, 1 not active, 1 replayed and %d rate limited", counted, stock, replays-1)
	}

	families := scrapeMetrics(t, sys.URL)
	for _, outcome := range []string{"accepted", "replayed", "sold_out", "limit", "rate_limited", "not_active", "failed"} {
		got, ok := seriesValue(families, "flashsale_purchases_total", map[string]string{"outcome": outcome})
		if !ok || int(got) != counted[outcome] {
			t.Errorf("flashsale_purchases_total{outcome=%q} = %v (exposed %v), the clients saw %d", outcome, got, ok, counted[outcome])
		}
	}
	got, _ := seriesValue(families, "flashsale_http_requests_total", map[string]string{"operation": "placeOrder", "code": "202"})
	if int(got) != status202 {
		t.Errorf("placeOrder 202s counted %v, the clients saw %d", got, status202)
	}
	got, _ = seriesValue(families, "flashsale_http_request_duration_seconds", map[string]string{"operation": "placeOrder"})
	if int(got) != len(all) {
		t.Errorf("placeOrder latencies observed %v, want %d", got, len(all))
	}
	if got, _ = seriesValue(families, "flashsale_reservation_duration_seconds", nil); int(got) < counted["accepted"] {
		t.Errorf("reservations timed %v, want at least %d", got, counted["accepted"])
	}
	for _, name := range []string{"flashsale_pool_connections", "flashsale_pool_max_connections", "flashsale_queue_tasks",
		"flashsale_queue_oldest_pending_age_seconds", "flashsale_ws_connections"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s not exposed", name)
		}
	}
	if v, _ := seriesValue(families, "flashsale_pool_max_connections", map[string]string{"pool": "postgres"}); v <= 0 {
		t.Errorf("postgres pool max %v", v)
	}

	saleLabels := map[string]string{"sale": sale.Sale.ID.String()}
	// The worker writes every accepted order: each is timed from acceptance to durable; the live
	// sale's gauges show the stock; the consumers read the confirmations.
	testutil.WaitFor(t, time.Minute, "every accepted order timed to durable, the three consumer groups caught up, no drift", func() bool {
		families = scrapeMetrics(t, sys.AdminURL)
		durable, _ := seriesValue(families, "flashsale_order_durable_delay_seconds", nil)
		// The drift is what the inventory-sync consumer saw at its last check: the units of
		// events still on their way show as drift until it has applied them.
		d, drift := seriesValue(families, "flashsale_inventory_drift_units", saleLabels)
		return int(durable) >= stock && drift && d == 0 && consumersCaughtUp(families)
	})
	if v, _ := seriesValue(families, "flashsale_sale_remaining_units", saleLabels); v != 0 {
		t.Errorf("remaining %v, want 0", v)
	}
	if v, _ := seriesValue(families, "flashsale_sale_sold_units", saleLabels); int(v) != stock {
		t.Errorf("sold %v, want %d", v, stock)
	}
	if v, _ := seriesValue(families, "flashsale_inventory_drift_units", saleLabels); v != 0 {
		t.Errorf("drift %v, want 0", v)
	}
	if v, _ := seriesValue(families, "flashsale_kafka_circuit_breaker_state", map[string]string{"state": "closed"}); v != 1 {
		t.Errorf("circuit breaker closed = %v, want 1", v)
	}
	for _, name := range []string{"flashsale_consumer_dead_letters_total", "flashsale_outbox_relay_healthy"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s not exposed on the admin listener", name)
		}
	}
	checkOverview(t, c, sys, counted, len(all), tokens[0])

	resp, err := http.Get(sys.AdminURL + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("admin /healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	checkDashboardAndRules(t, families)
}

// consumersCaughtUp: each of the three consumer groups reports its lag, and has none left.
func consumersCaughtUp(families map[string]*dto.MetricFamily) bool {
	groups := map[string]float64{}
	for _, m := range families["flashsale_consumer_lag_messages"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "group" {
				groups[l.GetValue()] += m.GetGauge().GetValue()
			}
		}
	}
	if len(groups) != 3 {
		return false
	}
	for _, lag := range groups {
		if lag != 0 {
			return false
		}
	}
	return true
}

// metricName finds the metric names in PromQL: flashsale_*, and the standard go_ and process_.
var metricName = regexp.MustCompile(`\b(?:flashsale|go|process)_[a-z0-9_]+\b`)

// checkDashboardAndRules: every metric name the Grafana dashboard and the alert rules use is
// exported (a histogram's _bucket, _sum and _count by its family).
func checkDashboardAndRules(t *testing.T, families map[string]*dto.MetricFamily) {
	t.Helper()
	exported := map[string]bool{}
	for name, mf := range families {
		exported[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[name+s] = true
			}
		}
	}
	root := filepath.Join("..", "..", "deploy")
	var queries []string
	dash, err := os.ReadFile(filepath.Join(root, "grafana", "flashsale.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Targets []struct{ Expr string }
		Panels  []json.RawMessage // a row's panels
	}
	var board struct {
		Panels     []json.RawMessage
		Templating struct {
			List []struct {
				Query json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(dash, &board); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var walk func([]json.RawMessage)
	walk = func(panels []json.RawMessage) {
		for _, raw := range panels {
			var p panel
			if err := json.Unmarshal(raw, &p); err != nil {
				t.Fatalf("dashboard panel: %v", err)
			}
			for _, tg := range p.Targets {
				queries = append(queries, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(board.Panels)
	for _, v := range board.Templating.List {
		queries = append(queries, string(v.Query)) // a variable's query, e.g. label_values(metric, label)
	}
	rules, err := os.ReadFile(filepath.Join(root, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "summary:") &&
			!strings.HasPrefix(l, "description:") {
			queries = append(queries, l)
		}
	}
	var used, missing []string
	for _, q := range queries {
		for _, name := range metricName.FindAllString(q, -1) {
			if !slices.Contains(used, name) {
				used = append(used, name)
			}
			if !exported[name] && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
	}
	if len(used) < 15 {
		t.Fatalf("only %d metric names found in the dashboard and rules: %v", len(used), used)
	}
	if len(missing) > 0 {
		t.Fatalf("the dashboard or rules use metrics the system does not export: %v", missing)
	}
	t.Logf("%d metric names of the dashboard and the rules, all exported", len(used))
}

// checkOverview: the control room's source (GET /v1/admin/overview) shows the counts the
// clients saw, as /metrics does; a shopper may not read it.
func checkOverview(t *testing.T, c *testutil.Client, sys *testutil.System, counted map[string]int, purchases int, shopper string) {
	t.Helper()
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/admin/overview", Token: shopper}); r.Status != http.StatusForbidden {
		t.Errorf("overview for a shopper: %d %s", r.Status, r.Body)
	}
	admin := sys.TokenFor(t, sys.CreateUsers(t, 1, domain.RoleAdmin)[0])
	r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/admin/overview", Token: admin})
	if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("overview: %d %v %s", r.Status, r.Header, r.Body)
	}
	var o struct {
		Purchases []struct {
			Outcome string `json:"outcome"`
			Total   int    `json:"total"`
		} `json:"purchases"`
		PurchaseLatency struct {
			Count int `json:"count"`
		} `json:"purchaseLatency"`
		Queue struct {
			Name     string `json:"name"`
			Measured bool   `json:"measured"`
		} `json:"queue"`
		Durable struct {
			Measured bool `json:"measured"`
			Latency  struct {
				Count int `json:"count"`
			} `json:"latency"`
		} `json:"durable"`
		Drift []struct {
			Units int `json:"units"`
		} `json:"drift"`
	}
	if err := json.Unmarshal(r.Body, &o); err != nil {
		t.Fatal(err)
	}
	for _, p := range o.Purchases {
		if p.Total != counted[p.Outcome] {
			t.Errorf("overview purchases %s = %d, the clients saw %d", p.Outcome, p.Total, counted[p.Outcome])
		}
	}
	if len(o.Purchases) != 8 || o.PurchaseLatency.Count != purchases {
		t.Errorf("overview: %d outcomes, %d purchases timed; want 8 and %d", len(o.Purchases), o.PurchaseLatency.Count, purchases)
	}
	if o.Queue.Name != sys.Config.OrderQueue || !o.Queue.Measured {
		t.Errorf("overview queue %+v, want %s measured", o.Queue, sys.Config.OrderQueue)
	}
	if !o.Durable.Measured || o.Durable.Latency.Count < counted["accepted"] {
		t.Errorf("overview durable %+v, want measured and at least %d", o.Durable, counted["accepted"])
	}
	if len(o.Drift) != 1 || o.Drift[0].Units != 0 {
		t.Errorf("overview drift %+v, want the sale's, 0", o.Drift)
	}
}
