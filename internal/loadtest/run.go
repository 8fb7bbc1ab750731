package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Config is one scenario.
type Config struct {
	// URLs are the API nodes of one system (at least one): users, and so their purchases, take
	// them in turn; the admin, the sale and the final inventory go through the first.
	URLs []string
	// DatabaseURL is its PostgreSQL (for verification and connection counts): the server itself,
	// not a transaction-pooling pgBouncer, whose server connections are not the system's.
	DatabaseURL               string
	AdminEmail, AdminPassword string
	// Users buy from a sale of Stock units, at most Limit each, Quantity per purchase, its
	// stock in Shards shards (domain.Sale.Shards; 0: the system's default, one).
	Users, Stock, Limit, Quantity, Shards int
	// Mode is "burst" (every user's purchase released at once), "rate" (Rate purchases per
	// second, open loop, for Duration; users take turns) or "connections" (closed loop, as wrk:
	// Connections clients each send the next purchase as soon as the last is answered, for
	// Duration; users take turns).
	Mode        string
	Rate        int
	Connections int
	Duration    time.Duration
	// CPUProcesses are the process names (as /proc/<pid>/comm has them) whose CPU time the run
	// reports per 1,000 requests, e.g. flashsale, redis-server, postgres; the generator itself is
	// left out.
	CPUProcesses []string
	// Conns is how many connections the generator opens (default: one per user, at most 10,000).
	Conns int
	// PoolSize is the target's DB_MAX_CONNS, to report connections in use against it.
	PoolSize int
	// AdmitRate and AdmissionTTL are the waiting room's settings in Mode "room" (room.go):
	// every user joins before the start and buys once admitted.
	AdmitRate    int
	AdmissionTTL time.Duration
	// AutoRate lets the room find its rate (AdmitRate its ceiling).
	AutoRate bool
	// DrainTimeout bounds the wait for the last order to become durable.
	DrainTimeout time.Duration
	// Progress, if set, receives a progress bar.
	Progress io.Writer
	Label    string
}

func (c *Config) defaults() {
	if c.Mode == "" {
		c.Mode = "burst"
	}
	if c.Quantity == 0 {
		c.Quantity = 1
	}
	if c.Limit == 0 {
		c.Limit = 1
	}
	if c.Conns == 0 {
		c.Conns = min(c.Users, 10000)
		switch c.Mode {
		case "rate":
			c.Conns = min(max(c.Rate/10, 64), 2000)
		case "connections":
			c.Conns = c.Connections
		case "room":
			c.Conns = min(c.Users, 2000)
		}
	}
	if c.PoolSize == 0 {
		c.PoolSize = 20
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 2 * time.Minute
	}
	if c.Label == "" {
		c.Label = "flashsale"
	}
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50, P90, P99, P999, Max float64
}

// Point is one purchase on the latency-over-time chart.
type Point struct {
	AtMs      float64 `json:"atMs"`
	LatencyMs float64 `json:"latencyMs"`
	Status    int     `json:"status"`
}

// Report is the outcome of one run.
type Report struct {
	Label        string         `json:"label"`
	Mode         string         `json:"mode"`
	Users        int            `json:"users"`
	Stock        int            `json:"stock"`
	Limit        int            `json:"limit"`
	Requests     int            `json:"requests"`
	Statuses     map[string]int `json:"statuses"`
	Errors       int            `json:"errors"`
	AnsweredIn   float64        `json:"answeredInMs"`
	Throughput   float64        `json:"throughputPerSec"`
	Latency      Latency        `json:"latencyMs"`
	DurableAfter float64        `json:"lastOrderDurableAfterMs"`

	DemandUnits   int      `json:"demandUnits"`
	Accepted      int      `json:"accepted"`
	Sold          int      `json:"soldUnits"`
	Remaining     int      `json:"remaining"`
	Oversold      int      `json:"oversoldUnits"`
	Undersold     int      `json:"undersoldUnits"`
	MissingRows   int      `json:"acceptedWithoutRow"`
	ExtraRows     int      `json:"rowsWithoutAcceptance"`
	AboveLimit    int      `json:"usersAboveLimit"`
	DuplicateKeys int      `json:"duplicateIdempotencyKeys"`
	Correct       bool     `json:"correct"`
	Problems      []string `json:"problems,omitempty"`

	PeakDBConns int `json:"peakDbConnectionsInUse"`
	PoolSize    int `json:"poolSize"`

	// Nodes are the requests and acceptances per API node, when there are several.
	Nodes []NodeCount `json:"nodes,omitempty"`

	// CPU is the CPU time the system's processes spent during the run (Config.CPUProcesses).
	CPU []CPUUse `json:"cpu,omitempty"`

	// Counters are the system's own counts of the run's purchases (/metrics and the control
	// room's overview); nil when they could not be read (CountersNote says why).
	Counters     *Counters `json:"counters,omitempty"`
	CountersNote string    `json:"countersNote,omitempty"`

	Series []Point `json:"series,omitempty"`

	// Room is the waiting room's verification (Mode "room").
	Room *RoomReport `json:"room,omitempty"`
}

// NodeCount is what one API node answered.
type NodeCount struct {
	URL      string `json:"url"`
	Requests int    `json:"requests"`
	Accepted int    `json:"accepted"`
}

// user is a logged-in shopper with an address of its own, on an API node of its own.
type user struct {
	id    uuid.UUID
	token string
	ip    string
	node  int
}

// Runner runs scenarios against one target, keeping its users between runs.
type Runner struct {
	cfg   Config
	c     *client
	admin string
	users []user
}

// NewRunner logs the admin in and creates and logs in cfg.Users users (each with its own
// X-Forwarded-For address, which the target believes if 127.0.0.1 is in TRUSTED_PROXIES).
func NewRunner(ctx context.Context, cfg Config) (*Runner, error) {
	cfg.defaults()
	if len(cfg.URLs) == 0 {
		return nil, errors.New("loadtest: no API URL")
	}
	switch {
	case cfg.Mode != "burst" && cfg.Mode != "rate" && cfg.Mode != "connections" && cfg.Mode != "room":
		return nil, fmt.Errorf("loadtest: mode %q: burst, rate, connections or room", cfg.Mode)
	case cfg.Mode == "room" && (cfg.AdmitRate < 1 || cfg.AdmissionTTL < 5*time.Second):
		return nil, errors.New("loadtest: room mode needs --admit-rate above 0 and --admission-ttl of 5 s or more")
	case cfg.Mode == "connections" && (cfg.Connections < 1 || cfg.Duration <= 0):
		return nil, errors.New("loadtest: connections mode needs --connections and --duration above 0")
	}
	r := &Runner{cfg: cfg, c: newClient(cfg.URLs, cfg.Conns)}
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	err := r.c.json(ctx, call{method: http.MethodPost, path: "/v1/auth/login", ip: "192.0.2.1",
		body: map[string]string{"email": cfg.AdminEmail, "password": cfg.AdminPassword}}, &tok)
	if err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	r.admin = tok.AccessToken
	if err := r.prepareUsers(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Runner) prepareUsers(ctx context.Context) error {
	run := uuid.NewString()[:8]
	r.users = make([]user, r.cfg.Users)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= r.cfg.Users {
					return
				}
				if err := r.prepareUser(ctx, run, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if r.cfg.Progress != nil && i%500 == 0 {
					fmt.Fprintf(r.cfg.Progress, "\r%-12s users %d/%d", r.cfg.Label, i, r.cfg.Users)
				}
			}
		})
	}
	wg.Wait()
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "\r%-12s users %d/%d\n", r.cfg.Label, r.cfg.Users, r.cfg.Users)
	}
	return firstErr
}

func (r *Runner) prepareUser(ctx context.Context, run string, i int) error {
	ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
	node := i % len(r.cfg.URLs)
	creds := map[string]string{"email": fmt.Sprintf("load-%s-%d@load.test", run, i), "password": "load-test-Passw0rd!"}
	var u struct {
		ID uuid.UUID `json:"id"`
	}
	// A registration that got no answer (a starved machine: the server's write timeout) is sent
	// again; if the first did register, the account is read back after the login.
	var err error
	for try := 0; try < 3; try++ {
		var a answer
		if a, err = r.c.do(ctx, call{method: http.MethodPost, path: "/v1/auth/register", ip: ip, body: creds, node: node}); err != nil {
			continue
		}
		switch {
		case a.status/100 == 2:
			err = json.Unmarshal(a.body, &u)
		case a.status == http.StatusConflict && try > 0: // registered by the try that got no answer
		default:
			err = fmt.Errorf("POST /v1/auth/register: %d %s", a.status, a.body)
		}
		break
	}
	if err != nil {
		return fmt.Errorf("register user %d: %w", i, err)
	}
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	if err := r.c.json(ctx, call{method: http.MethodPost, path: "/v1/auth/login", ip: ip, body: creds, node: node}, &tok); err != nil {
		return fmt.Errorf("login user %d: %w", i, err)
	}
	if u.ID == uuid.Nil {
		if err := r.c.json(ctx, call{method: http.MethodGet, path: "/v1/me", ip: ip, token: tok.AccessToken, node: node}, &u); err != nil {
			return fmt.Errorf("read back user %d: %w", i, err)
		}
	}
	r.users[i] = user{id: u.ID, token: tok.AccessToken, ip: ip, node: node}
	return nil
}

type result struct {
	user    int
	node    int
	qty     int
	start   time.Duration // since the run began
	latency time.Duration
	status  int
	problem string
	orderID uuid.UUID
	err     error
}

// Run runs the scenario once, on a new sale.
func (r *Runner) Run(ctx context.Context) (Report, error) {
	cfg := r.cfg
	if cfg.Mode == "room" {
		return r.runRoom(ctx)
	}
	var sale struct {
		ID uuid.UUID `json:"id"`
	}
	now := time.Now().UTC()
	body := map[string]any{
		"name": "Load test " + now.Format(time.RFC3339Nano), "priceCents": 1000, "currency": "EUR",
		"totalStock": cfg.Stock, "perUserLimit": cfg.Limit,
		"startsAt": now.Add(-time.Second).Format(time.RFC3339Nano), "endsAt": now.Add(time.Hour).Format(time.RFC3339Nano),
	}
	if cfg.Shards > 0 {
		body["shards"] = cfg.Shards
	}
	err := r.c.json(ctx, call{method: http.MethodPost, path: "/v1/admin/sales", token: r.admin, ip: "192.0.2.1", body: body}, &sale)
	if err != nil {
		return Report{}, fmt.Errorf("create sale: %w", err)
	}
	r.c.warm(ctx, cfg.Conns)

	sampler, err := startSampler(ctx, cfg.DatabaseURL)
	if err != nil {
		return Report{}, err
	}
	var results []result
	m0, o0, cerr := r.counters(ctx)
	cpuBefore := cpuTimes(cfg.CPUProcesses)
	began := time.Now()
	switch cfg.Mode {
	case "rate":
		results = r.rate(ctx, sale.ID, began)
	case "connections":
		results = r.closedLoop(ctx, sale.ID, began)
	default:
		results = r.burst(ctx, sale.ID, began)
	}
	rep := r.summarise(results)
	rep.CPU = cpuUse(cfg.CPUProcesses, cpuBefore, cpuTimes(cfg.CPUProcesses), len(results))
	rep.Label, rep.Mode, rep.Users, rep.Stock, rep.Limit, rep.PoolSize = cfg.Label, cfg.Mode, cfg.Users, cfg.Stock, cfg.Limit, cfg.PoolSize
	if err := r.verify(ctx, sale.ID, began, results, &rep); err != nil {
		sampler.stop()
		return rep, err
	}
	if cerr == nil {
		var m1, o1 map[string]int
		if m1, o1, cerr = r.counters(ctx); cerr == nil {
			compareCounters(&rep, m0, o0, m1, o1)
			rep.Correct = len(rep.Problems) == 0
		}
	}
	if cerr != nil {
		rep.CountersNote = "the system's counters were not read: " + cerr.Error()
	}
	rep.PeakDBConns = sampler.stop()
	return rep, nil
}

func (r *Runner) purchase(ctx context.Context, saleID uuid.UUID, i int, began time.Time, scheduled time.Time) result {
	u := r.users[i%len(r.users)]
	res := result{user: i % len(r.users), node: u.node, qty: r.cfg.Quantity, start: scheduled.Sub(began)}
	a, err := r.c.do(ctx, call{method: http.MethodPost, path: "/v1/sales/" + saleID.String() + "/orders",
		token: u.token, ip: u.ip, idemKey: uuid.NewString(), body: map[string]int{"quantity": r.cfg.Quantity}, node: u.node})
	// Latency counts from when the request was due, not when it was sent (no coordinated omission).
	res.latency = time.Since(scheduled)
	if err != nil {
		res.err = err
		return res
	}
	res.status = a.status
	var body struct {
		ID   uuid.UUID `json:"id"`
		Type string    `json:"type"`
	}
	_ = json.Unmarshal(a.body, &body)
	if a.status == http.StatusAccepted {
		res.orderID = body.ID
	} else {
		res.problem = body.Type[strings.LastIndex(body.Type, "/")+1:]
	}
	return res
}

// burst releases every user's purchase at once.
func (r *Runner) burst(ctx context.Context, saleID uuid.UUID, began time.Time) []result {
	n := len(r.users)
	results := make([]result, n)
	release := make(chan struct{})
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-release
			results[i] = r.purchase(ctx, saleID, i, began, time.Now())
			answered.Add(1)
		})
	}
	stop := r.progress(&answered, n)
	close(release)
	wg.Wait()
	stop()
	return results
}

// rate sends Rate purchases per second for Duration, open loop: each is sent when due, whether
// or not earlier ones were answered.
func (r *Runner) rate(ctx context.Context, saleID uuid.UUID, began time.Time) []result {
	total := int(float64(r.cfg.Rate) * r.cfg.Duration.Seconds())
	results := make([]result, total)
	interval := time.Second / time.Duration(r.cfg.Rate)
	var answered atomic.Int64
	var wg sync.WaitGroup
	stop := r.progress(&answered, total)
	for i := range total {
		due := began.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			results[i] = r.purchase(ctx, saleID, i, began, due)
			answered.Add(1)
		})
	}
	wg.Wait()
	stop()
	return results
}

// closedLoop runs Connections clients, each sending its next purchase as soon as its last one is
// answered, for Duration: the load a system can take, as wrk measures it.
func (r *Runner) closedLoop(ctx context.Context, saleID uuid.UUID, began time.Time) []result {
	var next, answered atomic.Int64
	deadline := began.Add(r.cfg.Duration)
	perClient := make([][]result, r.cfg.Connections)
	var wg sync.WaitGroup
	for c := range r.cfg.Connections {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(deadline) {
					return
				}
				i := int(next.Add(1) - 1)
				perClient[c] = append(perClient[c], r.purchase(ctx, saleID, i, began, now))
				answered.Add(1)
			}
		})
	}
	wg.Wait()
	results := make([]result, 0, answered.Load())
	for _, rs := range perClient {
		results = append(results, rs...)
	}
	return results
}

func (r *Runner) progress(answered *atomic.Int64, total int) func() {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	draw := func() {
		n := int(answered.Load())
		width := 30
		filled := width * n / max(total, 1)
		fmt.Fprintf(r.cfg.Progress, "\r%-12s [%s%s] %d/%d answered", r.cfg.Label,
			strings.Repeat("=", filled), strings.Repeat(" ", width-filled), n, total)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				draw()
				fmt.Fprintln(r.cfg.Progress)
				return
			case <-t.C:
				draw()
			}
		}
	}()
	return func() { close(done); <-finished }
}

func (r *Runner) summarise(results []result) Report {
	rep := Report{Requests: len(results), Statuses: map[string]int{}}
	if len(r.cfg.URLs) > 1 {
		rep.Nodes = make([]NodeCount, len(r.cfg.URLs))
		for i, u := range r.cfg.URLs {
			rep.Nodes[i].URL = u
		}
		for _, res := range results {
			rep.Nodes[res.node].Requests++
			if res.err == nil && res.status == http.StatusAccepted {
				rep.Nodes[res.node].Accepted++
			}
		}
	}
	h := hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
	var last time.Duration
	for _, res := range results {
		if res.err != nil {
			rep.Errors++
			rep.Statuses["error"]++
			continue
		}
		key := fmt.Sprint(res.status)
		if res.problem != "" {
			key += " " + res.problem
		}
		rep.Statuses[key]++
		_ = h.RecordValue(max(res.latency.Microseconds(), 1))
		last = max(last, res.start+res.latency)
		rep.Series = append(rep.Series, Point{AtMs: ms(res.start), LatencyMs: ms(res.latency), Status: res.status})
	}
	q := func(p float64) float64 { return float64(h.ValueAtQuantile(p)) / 1000 }
	rep.Latency = Latency{P50: q(50), P90: q(90), P99: q(99), P999: q(99.9), Max: float64(h.Max()) / 1000}
	rep.AnsweredIn = ms(last)
	if last > 0 {
		rep.Throughput = float64(len(results)) / last.Seconds()
	}
	sort.Slice(rep.Series, func(i, j int) bool { return rep.Series[i].AtMs < rep.Series[j].AtMs })
	return rep
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// verify waits for every accepted order to become durable, then checks the outcome against the
// API and PostgreSQL.
func (r *Runner) verify(ctx context.Context, saleID uuid.UUID, began time.Time, results []result, rep *Report) error {
	accepted := map[uuid.UUID]int{} // order id -> user
	demand := map[int]int{}
	for _, res := range results {
		demand[res.user] += res.qty
		if res.status == http.StatusAccepted {
			accepted[res.orderID] = res.user
		}
	}
	for _, units := range demand {
		rep.DemandUnits += min(units, r.cfg.Limit)
	}
	rep.Accepted = len(accepted)

	conn, err := pgx.Connect(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	var rows int
	for {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM orders WHERE sale_id = $1 AND status = 'confirmed'`, saleID).Scan(&rows); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if rows >= len(accepted) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var lastDurable *time.Time
	if err := conn.QueryRow(ctx, `SELECT COALESCE(sum(quantity), 0), max(confirmed_at) FROM orders WHERE sale_id = $1 AND status = 'confirmed'`,
		saleID).Scan(&rep.Sold, &lastDurable); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if lastDurable != nil {
		rep.DurableAfter = ms(lastDurable.Sub(began))
	}
	idRows, err := conn.Query(ctx, `SELECT id FROM orders WHERE sale_id = $1 AND status = 'confirmed'`, saleID)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	ids, err := pgx.CollectRows(idRows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	inDB := map[uuid.UUID]bool{}
	for _, id := range ids {
		inDB[id] = true
		if _, ok := accepted[id]; !ok {
			rep.ExtraRows++
		}
	}
	for id := range accepted {
		if !inDB[id] {
			rep.MissingRows++
		}
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT user_id FROM orders WHERE sale_id = $1 AND status = 'confirmed'
		GROUP BY user_id HAVING sum(quantity) > $2) x`, saleID, r.cfg.Limit).Scan(&rep.AboveLimit); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT count(*) - count(DISTINCT (user_id, idempotency_key)) FROM orders WHERE sale_id = $1`,
		saleID).Scan(&rep.DuplicateKeys); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var inv struct {
		Remaining int `json:"remaining"`
	}
	if err := r.c.json(ctx, call{method: http.MethodGet, path: "/v1/sales/" + saleID.String() + "/inventory"}, &inv); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	rep.Remaining = inv.Remaining

	want := min(r.cfg.Stock, rep.DemandUnits)
	if rep.Sold > want {
		rep.Oversold = rep.Sold - want
	}
	// With more than one unit per purchase the last units may be unsellable to anyone: allow
	// that slack, never more.
	if slack := r.cfg.Quantity - 1; rep.Sold < want-slack {
		rep.Undersold = want - rep.Sold
	}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	check(rep.Sold <= r.cfg.Stock, "oversold: %d units sold of %d", rep.Sold, r.cfg.Stock)
	check(rep.Oversold == 0, "sold %d units, more than the %d demanded within limits", rep.Sold, want)
	check(rep.Undersold == 0, "sold %d units, %d were demanded and in stock", rep.Sold, want)
	check(rep.MissingRows == 0, "%d accepted orders have no row in PostgreSQL", rep.MissingRows)
	check(rep.ExtraRows == 0, "%d order rows were never accepted", rep.ExtraRows)
	check(rep.AboveLimit == 0, "%d users above the per-user limit", rep.AboveLimit)
	check(rep.DuplicateKeys == 0, "%d duplicate idempotency keys", rep.DuplicateKeys)
	check(rep.Remaining == r.cfg.Stock-rep.Sold, "remaining %d, stock %d - sold %d = %d", rep.Remaining, r.cfg.Stock, rep.Sold, r.cfg.Stock-rep.Sold)
	check(rep.Errors == 0, "%d requests failed without an answer", rep.Errors)
	rep.Correct = len(rep.Problems) == 0
	return nil
}

// sampler watches PostgreSQL's connections in use (not idle) by the target during a run.
type sampler struct {
	stopCh chan struct{}
	done   chan int
}

func startSampler(ctx context.Context, dbURL string) (*sampler, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connection sampler: %w", err)
	}
	s := &sampler{stopCh: make(chan struct{}), done: make(chan int, 1)}
	go func() {
		defer conn.Close(context.Background())
		peak := 0
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var n int
			err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()`).Scan(&n)
			if err == nil {
				peak = max(peak, n)
			}
			select {
			case <-s.stopCh:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

func (s *sampler) stop() int {
	close(s.stopCh)
	return <-s.done
}
