package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/loadtest"
)

// Options configure a run of the suite. Durations are configurable so that a short subset is
// quick; the defaults are the issue's.
type Options struct {
	Bin      string // the flashsale binary the system runs as
	WorkDir  string // where the servers' data and every log go (default: a new temporary directory)
	PGBin    string // directory of initdb and pg_ctl (default: found)
	PGUser   string // the user PostgreSQL runs as when the suite runs as root
	RedisBin string // redis-server
	Faults   []string
	Env      []string // extra settings for the system under test
	// Durability is the system's REDIS_DURABILITY (none, aof, replica); the private Redis is set
	// up to match it: aof makes the primary fsync every write, replica gives every row a replica.
	Durability string

	Rate            int           // purchases per second of the rate load
	BurstUsers      int           // users of the burst load, one purchase each
	BurstStock      int           // stock of the burst's sale (limit 1)
	RoomUsers       int           // users of the room load: each joins the sale's waiting room, buys once admitted
	RoomStock       int           // stock of the room load's sale (limit 1)
	RoomRate        int           // its waiting room's admitPerSecond
	Shards          int           // stock shards of every row's sale (0: one)
	Lead, Trail     time.Duration // rate load before the fault and after it clears
	PGStopFor       time.Duration
	TerminateFor    time.Duration
	TerminateEvery  time.Duration
	ReadOnlyFor     time.Duration
	RedisRestartAt  time.Duration // into the burst
	AOFLoss         time.Duration
	RollbackBy      time.Duration
	BrokerDownFor   time.Duration
	APIKillAt       time.Duration // into the burst
	InflightWait    time.Duration
	ConvergeTimeout time.Duration
	Settle          time.Duration // invariants must hold this long to count as converged
	Progress        io.Writer     // progress lines (nil: none)
}

// Defaults are the numbers: 100 purchases/s or a 5,000-user burst against stock 500.
func Defaults() Options {
	return Options{
		PGUser: "postgres", RedisBin: "redis-server",
		Rate: 100, BurstUsers: 5000, BurstStock: 500, Lead: 5 * time.Second, Trail: 5 * time.Second,
		RoomUsers: 2000, RoomStock: 500, RoomRate: 250,
		PGStopFor: 30 * time.Second, TerminateFor: 10 * time.Second, TerminateEvery: time.Second,
		ReadOnlyFor: 20 * time.Second, RedisRestartAt: 900 * time.Millisecond, AOFLoss: time.Second,
		RollbackBy: 10 * time.Second, BrokerDownFor: time.Second, APIKillAt: 500 * time.Millisecond,
		InflightWait: 40 * time.Second, ConvergeTimeout: 120 * time.Second, Settle: 3 * time.Second,
	}
}

// ShortDefaults is the subset for the test command: the two PostgreSQL faults that need no
// burst, with short durations; about a minute in all.
func ShortDefaults() Options {
	o := Defaults()
	_, o.Faults = FaultNames()
	o.Rate, o.Lead, o.Trail = 50, 2*time.Second, 2*time.Second
	o.TerminateFor, o.ReadOnlyFor = 3*time.Second, 5*time.Second
	o.ConvergeTimeout, o.Settle = 30*time.Second, 2*time.Second
	return o
}

// Row is one fault's result.
type Row struct {
	Fault   string
	Title   string
	Load    string
	Outcome Outcome
	// Converged is the time from the fault clearing until every invariant held (for Settle);
	// Never when they did not within ConvergeTimeout.
	Converged time.Duration
	// AfterLoad is the time from the last purchase's answer (the load, then any purchases a
	// row sends again after it) until every invariant held: what the system took once nothing
	// more came in. A row whose load outlasts the fault converges no sooner than its load ends.
	AfterLoad time.Duration
	Never     bool
	Err       error
	Notes     []string
	LogDir    string
}

// Violated is true when the row broke an invariant or could not be run.
func (r Row) Violated() bool { return r.Err != nil || r.Never || !r.Outcome.OK() }

// Run runs the selected faults one at a time, each on fresh servers, and returns their rows.
func Run(ctx context.Context, o Options) ([]Row, error) {
	selected, err := selectFaults(o.Faults)
	if err != nil {
		return nil, err
	}
	tools, err := findPostgres(o.PGBin, o.PGUser)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(o.RedisBin); err != nil {
		return nil, fmt.Errorf("redis-server not found (./scripts/chaos.sh installs it with apt-get): %w", err)
	}
	made := o.WorkDir == ""
	if made {
		if o.WorkDir, err = os.MkdirTemp("", "flashsale-chaos-"); err != nil {
			return nil, err
		}
	}
	// PostgreSQL, run as another user when this is root, must reach its directories.
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
	o.progress("work directory %s", o.WorkDir)
	template := filepath.Join(o.WorkDir, "pg-template")
	if err := tools.initTemplate(ctx, template); err != nil {
		return nil, err
	}
	var rows []Row
	for _, f := range selected {
		if ctx.Err() != nil {
			break
		}
		o.progress("%s: %s", f.name, f.title)
		row := runRow(ctx, o, tools, template, f)
		o.progress("%s: %s", f.name, summaryLine(row))
		rows = append(rows, row)
	}
	_ = os.RemoveAll(template)
	// The logs of a violated row are kept for whoever fixes it; a clean run leaves nothing.
	if made && ctx.Err() == nil && !slices.ContainsFunc(rows, Row.Violated) {
		_ = os.RemoveAll(o.WorkDir)
	} else {
		o.progress("logs kept in %s", o.WorkDir)
	}
	return rows, ctx.Err()
}

func selectFaults(names []string) ([]fault, error) {
	if len(names) == 0 {
		return faults, nil
	}
	var out []fault
	for _, f := range faults {
		if slices.Contains(names, f.name) {
			out = append(out, f)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(faults, func(f fault) bool { return f.name == n }) {
			all, _ := FaultNames()
			return nil, fmt.Errorf("unknown fault %q; known: %s", n, strings.Join(all, ", "))
		}
	}
	return out, nil
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "[chaos %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// rowRun is one row in progress: its servers, the system, the load.
type rowRun struct {
	opts       Options
	f          fault
	dir        string
	tools      pgTools
	template   string
	pg         *Postgres
	redis      *Redis
	replica    *Redis
	cluster    *redisCluster
	target     *Redis // the server a fault aims at, when its setup chooses one
	sink       *mailSink
	sys        *System
	d          *driver
	verifyNode int // the API node the verifier asks

	mu      sync.Mutex
	t0      time.Time
	loadEnd time.Time // the last purchase answered
	notes   []string
	bg      sync.WaitGroup // work an injection left running alongside the load
}

// background runs work alongside the load; the row waits for it before it checks anything.
func (r *rowRun) background(work func()) { r.bg.Go(work) }

// mark notes an event of the injection, with its time since the load began.
func (r *rowRun) mark(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, fmt.Sprintf("+%.1fs %s", time.Since(r.t0).Seconds(), what))
	r.opts.progress("%s: %s", r.f.name, r.notes[len(r.notes)-1])
}

func (r *rowRun) brokerAddr() string { return r.sys.Broker }

func runRow(ctx context.Context, o Options, tools pgTools, template string, f fault) (row Row) {
	r := &rowRun{opts: o, f: f, dir: filepath.Join(o.WorkDir, f.name), tools: tools, template: template}
	row = Row{Fault: f.name, Title: f.title, Load: loadLabel(o, f, 0, 0), LogDir: filepath.Join(r.dir, "logs")}
	defer r.close()
	if err := os.MkdirAll(row.LogDir, 0o755); err != nil {
		row.Err = err
		return row
	}
	cleared, err := r.drive(ctx)
	row.Notes = append(row.Notes, r.notes...)
	if r.d != nil {
		row.Load = loadLabel(o, f, len(r.d.snapshot()), r.d.stock)
	}
	if err != nil {
		row.Err = err
		return row
	}
	// Converged: every invariant holds, and still holds Settle later.
	deadline := cleared.Add(o.ConvergeTimeout)
	var heldSince time.Time
	for {
		out, facts, err := r.look(ctx)
		row.Outcome = out
		if err == nil && out.OK() {
			if heldSince.IsZero() {
				heldSince = time.Now()
			}
			if time.Since(heldSince) >= o.Settle {
				row.Converged = heldSince.Sub(cleared)
				row.AfterLoad = max(0, heldSince.Sub(r.loadEnd))
				row.Notes = append(row.Notes, r.details(facts)...)
				break
			}
		} else {
			heldSince = time.Time{}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			row.Never = true
			if err != nil {
				row.Notes = append(row.Notes, "the last check failed: "+err.Error())
			} else {
				row.Notes = append(row.Notes, r.details(facts)...)
			}
			break
		}
		sleepUntil(ctx, time.Now().Add(time.Second))
	}
	row.Notes = append(row.Notes, "answers: "+formatCounts(statuses(r.d.snapshot())))
	if n := forgottenAnswers(r.d.snapshot()); n > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("%d keys answered 202, then otherwise when sent again (e.g. 409 sold-out): "+
			"the first answer was forgotten, not replayed", n))
	}
	if n := r.d.relogins(); n > 0 {
		row.Notes = append(row.Notes, fmt.Sprintf("%d shoppers logged in again after a 401", n))
	}
	return row
}

// loadLabel says what the load was; a rate load's length depends on how long the fault took to
// clear, so its purchases are counted once it is over (purchases: 0 before).
func loadLabel(o Options, f fault, purchases, stock int) string {
	if f.load == loadBurst {
		return fmt.Sprintf("burst %d users, stock %d", o.BurstUsers, o.BurstStock)
	}
	if f.load == loadRoom {
		return fmt.Sprintf("room %d users, stock %d, %d/s", o.RoomUsers, o.RoomStock, o.RoomRate)
	}
	if purchases == 0 {
		return fmt.Sprintf("%d/s", o.Rate)
	}
	return fmt.Sprintf("%d/s, %d buys, stock %d", o.Rate, purchases, stock)
}

// durability is the REDIS_DURABILITY the rows run with.
func durability(o Options) string {
	if o.Durability == "" {
		return "none"
	}
	return o.Durability
}

// drive starts the servers and the system, runs the load with the fault, and returns when the
// fault cleared.
func (r *rowRun) drive(ctx context.Context) (time.Time, error) {
	o, f := r.opts, r.f
	var err error
	if r.pg, err = newPostgres(ctx, r.tools, r.template, filepath.Join(r.dir, "pg")); err != nil {
		return time.Time{}, err
	}
	persist := f.redis
	if o.Durability == "aof" {
		persist = persistAOFAlways
	}
	var redisURL string
	switch {
	case f.cluster: // its own replicas
		if r.cluster, err = newRedisCluster(ctx, o.RedisBin, filepath.Join(r.dir, "redis-cluster"), persist); err != nil {
			return time.Time{}, err
		}
		redisURL = r.cluster.URL()
	default:
		if r.redis, err = newRedis(ctx, o.RedisBin, filepath.Join(r.dir, "redis"), persist); err != nil {
			return time.Time{}, err
		}
		redisURL = r.redis.URL()
	}
	if !f.cluster && (f.replica || o.Durability == "replica") {
		replicaPersist := persistNone
		if o.Durability == "aof" { // a replica that may be promoted keeps the promise too
			replicaPersist = persistAOFAlways
		}
		if r.replica, err = newRedis(ctx, o.RedisBin, filepath.Join(r.dir, "redis-replica"), replicaPersist,
			"--replicaof", "127.0.0.1", fmt.Sprint(r.redis.Port)); err != nil {
			return time.Time{}, err
		}
		if err := waitReplica(ctx, r.replica); err != nil {
			return time.Time{}, err
		}
	}
	if r.sink, err = startMailSink(); err != nil {
		return time.Time{}, err
	}
	r.sys, err = startSystem(ctx, systemConfig{
		Bin: o.Bin, LogDir: filepath.Join(r.dir, "logs"), Layout: f.layout, APINodes: f.apiNodes,
		DatabaseURL: r.pg.URL(appDatabase), RedisURL: redisURL, SMTPAddr: r.sink.Addr(),
		Env: append([]string{"REDIS_DURABILITY=" + durability(o)}, o.Env...),
	})
	if err != nil {
		return time.Time{}, err
	}
	users, stock, limit := o.BurstUsers, o.BurstStock, 1
	total := int(float64(o.Rate) * (o.Lead + f.window(o) + o.Trail).Seconds())
	if f.load == loadRate {
		// Both limits bind near the end: each user makes four purchases against a limit of three,
		// and the stock is 70% of the purchases.
		users, stock, limit = max(1, (total+3)/4), max(1, total*7/10), 3
	}
	if f.load == loadRoom {
		users, stock = o.RoomUsers, o.RoomStock
	}
	r.d = newDriver(r.sys.APIs, min(max(users, 64), 2000))
	r.d.shards = o.Shards
	r.opts.progress("%s: creating the sale (stock %d, limit %d) and %d users", f.name, stock, limit, users)
	if err := r.d.prepare(ctx, users, stock, limit); err != nil {
		return time.Time{}, err
	}
	if f.load == loadRoom {
		if err := r.d.enableRoom(ctx, o.RoomRate, roomAdmissionTTL); err != nil {
			return time.Time{}, err
		}
	}
	if f.setup != nil {
		if err := f.setup(ctx, r); err != nil {
			return time.Time{}, err
		}
	}
	r.t0 = time.Now()
	loadDone := make(chan struct{})
	var loadErr error
	go func() {
		defer close(loadDone)
		switch f.load {
		case loadBurst:
			r.d.burst(ctx)
		case loadRoom:
			loadErr = r.d.room(ctx)
		default:
			r.d.rate(ctx, o.Rate)
		}
	}()
	injectErr := f.inject(ctx, r, r.t0)
	cleared := time.Now()
	r.d.stopAt(cleared.Add(o.Trail))
	<-loadDone
	r.bg.Wait()
	r.mark("load over")
	if injectErr != nil {
		return cleared, fmt.Errorf("inject %s: %w", f.name, injectErr)
	}
	if loadErr != nil {
		return cleared, loadErr
	}
	if f.after != nil {
		if err := f.after(ctx, r); err != nil {
			return cleared, err
		}
	}
	r.loadEnd = time.Now()
	return cleared, nil
}

func waitReplica(ctx context.Context, r *Redis) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := r.Do(ctx, "INFO", "replication")
		if s, ok := info.(string); ok && err == nil && strings.Contains(s, "master_link_status:up") {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("redis replica not in sync after 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *rowRun) close() {
	if r.sys != nil {
		r.sys.Close()
	}
	if r.d != nil {
		r.d.close()
	}
	if r.sink != nil {
		r.sink.Close()
	}
	if r.cluster != nil {
		r.cluster.kill()
		for _, n := range r.cluster.nodes {
			_ = os.RemoveAll(n.dir)
		}
	}
	for _, rd := range []*Redis{r.replica, r.redis} {
		if rd != nil {
			rd.Kill()
			_ = os.RemoveAll(rd.dir)
		}
	}
	if r.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = r.pg.Stop(ctx, "immediate")
		cancel()
		_ = os.RemoveAll(r.pg.dataDir)
	}
}

// look gathers the facts once and evaluates them.
func (r *rowRun) look(ctx context.Context) (Outcome, Facts, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	d := r.d
	ps := d.snapshot()
	f := Facts{Stock: d.stock, Limit: d.limit, KeysWithSecondOrder: secondOrders(ps), Rows: map[uuid.UUID]OrderRow{}}
	var verified []loadtest.Purchase
	for _, p := range ps {
		ids := p.orderIDs()
		for _, id := range ids {
			f.Accepted = append(f.Accepted, AcceptedOrder{OrderID: id, User: d.users[p.user].id, Units: p.qty})
			verified = append(verified, loadtest.Purchase{User: p.user, Quantity: p.qty, Status: http.StatusAccepted, OrderID: id})
		}
		if len(ids) == 0 {
			a := p.last()
			verified = append(verified, loadtest.Purchase{User: p.user, Quantity: p.qty, Status: a.status, Err: a.err})
		}
	}
	var err error
	f.Verified, err = loadtest.Verify(ctx, loadtest.Config{
		URLs: []string{r.sys.APIs[r.verifyNode]}, DatabaseURL: r.pg.URL(appDatabase), Stock: d.stock, Limit: d.limit, Quantity: 1,
	}, d.saleID, d.began, verified)
	if err != nil {
		return Outcome{}, f, err
	}
	if err := r.readDatabase(ctx, &f); err != nil {
		return Outcome{}, f, err
	}
	if err := r.askUnwritten(ctx, &f); err != nil {
		return Outcome{}, f, err
	}
	if r.f.load == loadRoom {
		if f.Room, err = r.roomFacts(ctx); err != nil {
			return Outcome{}, f, err
		}
	}
	return Evaluate(f), f, nil
}

// askUnwritten asks the API what became of each accepted order without a row.
func (r *rowRun) askUnwritten(ctx context.Context, f *Facts) error {
	f.Unwritten = map[uuid.UUID]string{}
	var ids []uuid.UUID
	for _, a := range f.Accepted {
		if _, ok := f.Rows[a.OrderID]; !ok {
			ids = append(ids, a.OrderID)
		}
	}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := r.d.orderStatus(ctx, r.verifyNode, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			f.Unwritten[id] = st
		})
	}
	wg.Wait()
	return firstErr
}

// readDatabase reads the sale's order rows and what each consumer group applied.
func (r *rowRun) readDatabase(ctx context.Context, f *Facts) error {
	conn, err := pgx.Connect(ctx, r.pg.URL(appDatabase))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, user_id, quantity, status = 'confirmed' FROM orders WHERE sale_id = $1`, r.d.saleID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id uuid.UUID
		var o OrderRow
		if err := rows.Scan(&id, &o.User, &o.Units, &o.Confirmed); err != nil {
			rows.Close()
			return err
		}
		f.Rows[id] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// The event of an order has an id derived from the order's.
	eventOf := map[uuid.UUID]uuid.UUID{}
	var eventIDs []uuid.UUID
	for id, o := range f.Rows {
		if o.Confirmed {
			e := domain.OrderConfirmedEvent(domain.Order{ID: id}, time.Time{}).ID
			eventOf[e] = id
			eventIDs = append(eventIDs, e)
		}
	}
	f.Groups = map[string]GroupFacts{}
	for _, g := range consumerGroups {
		f.Groups[g.group] = GroupFacts{Processed: map[uuid.UUID]bool{}}
	}
	pe, err := conn.Query(ctx, `SELECT consumer, event_id FROM processed_events WHERE event_id = ANY($1)`, eventIDs)
	if err != nil {
		return err
	}
	for pe.Next() {
		var group string
		var e uuid.UUID
		if err := pe.Scan(&group, &e); err != nil {
			pe.Close()
			return err
		}
		if gf, ok := f.Groups[group]; ok && group != "flashsale-email" {
			gf.Processed[eventOf[e]] = true
		}
	}
	pe.Close()
	if err := pe.Err(); err != nil {
		return err
	}
	var orders, sold int
	err = conn.QueryRow(ctx, `SELECT COALESCE((SELECT orders FROM sale_stats WHERE sale_id = $1), 0),
		COALESCE((SELECT sold FROM sale_counters WHERE sale_id = $1), 0)`, r.d.saleID).Scan(&orders, &sold)
	if err != nil {
		return err
	}
	// Not a fact the invariants use: it tells events stuck in the outbox from events lost later.
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL AND id = ANY($1)`,
		eventIDs).Scan(&f.OutboxUnpublished); err != nil {
		return err
	}
	a := f.Groups["flashsale-analytics"]
	a.Applied = orders
	f.Groups["flashsale-analytics"] = a
	s := f.Groups["flashsale-inventory-sync"]
	s.Applied, s.UnitsEffect = sold, true
	f.Groups["flashsale-inventory-sync"] = s
	// Email: the effect is the mail; an event counts as applied once its mail arrived.
	e := f.Groups["flashsale-email"]
	for msgID, n := range r.sink.Deliveries() {
		id, err := uuid.Parse(strings.TrimSuffix(msgID, "@flashsale"))
		if err != nil {
			continue
		}
		if order, ok := eventOf[id]; ok {
			e.Processed[order] = true
			e.Applied += n
		}
	}
	f.Groups["flashsale-email"] = e
	return nil
}

// details are the row's figures beyond the table.
func (r *rowRun) details(f Facts) []string {
	o := Evaluate(f)
	d := []string{fmt.Sprintf("sold %d of %d (confirmed rows), remaining %d (API); lost %d = %d failed rows + %d released "+
		"without a row + %d still pending + %d unknown to PostgreSQL and Redis",
		f.Verified.Sold, f.Stock, f.Verified.Remaining, o.Lost, o.Failed, o.Released, o.Pending, o.Unknown)}
	if f.OutboxUnpublished > 0 {
		d = append(d, fmt.Sprintf("%d events of confirmed orders still unpublished in the outbox", f.OutboxUnpublished))
	}
	if f.Room != nil {
		d = append(d, roomDetails(f.Room))
	}
	if f.Verified.ExtraRows > 0 {
		d = append(d, fmt.Sprintf("%d confirmed rows for orders no buyer was answered 202 for", f.Verified.ExtraRows))
	}
	if f.Verified.MissingRows != o.Lost {
		d = append(d, fmt.Sprintf("the verifier counts %d accepted orders without a confirmed row", f.Verified.MissingRows))
	}
	if f.Verified.AboveLimit != o.AboveLimit {
		d = append(d, fmt.Sprintf("the verifier counts %d buyers above the limit in confirmed rows", f.Verified.AboveLimit))
	}
	return d
}

func summaryLine(r Row) string {
	if r.Err != nil {
		return "ERROR " + r.Err.Error()
	}
	v := r.Outcome.Violations()
	if r.Never {
		v = append(v, "did not converge")
	}
	if len(v) == 0 {
		return fmt.Sprintf("ok, converged %.1f s after the fault cleared (%.1f s after the load)", r.Converged.Seconds(), r.AfterLoad.Seconds())
	}
	return "VIOLATED: " + strings.Join(v, "; ")
}
