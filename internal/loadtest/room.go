package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RoomReport is what a waiting-room run (Mode "room") measured and verified on top of the
// purchase report: every user joins the room before the start, the room admits them, each
// admitted user buys at once over its WebSocket's queue:admitted, and the rest wait for
// queue:closed.
type RoomReport struct {
	Joined   int `json:"joined"`
	Admitted int `json:"admitted"`
	// MaxOverAdmitted is the most, at any admission, by which the admissions out and not yet
	// bought (times the limit) exceeded what the remaining stock could serve (0: never).
	MaxOverAdmitted int `json:"maxOverAdmitted"`
	// Rho is Spearman's rank correlation of join order against admission order (0: join time
	// does not predict admission); RhoBound is the bound it must stay within (4 standard errors).
	Rho      float64 `json:"spearmanRho"`
	RhoBound float64 `json:"spearmanBound"`
	// ToldClosed is how many of the users never admitted were told queue:closed; ClosedLagMs the
	// worst delay from the sell-out (the last unit reserved, PostgreSQL's clock) to that message.
	NotAdmitted int     `json:"notAdmitted"`
	ToldClosed  int     `json:"toldClosed"`
	ClosedLagMs float64 `json:"closedLagMs"`
	// ClosingPassMs is when the admission pass that closed the room ran (its queue:closed's ts),
	// from the sell-out: the part of ClosedLagMs before the fan-out.
	ClosingPassMs float64 `json:"closingPassMs"`
	// AdmitRate is the admissions per second measured from the first to the last.
	AdmitRate float64 `json:"admitRate"`
}

// roomUser is what one user saw.
type roomUser struct {
	joinedAt             time.Time
	admittedTS           time.Time // the queue:admitted event's ts (the server's pass)
	admittedUntil        time.Time // the admission's end (its expiresAt)
	admittedSeen         bool
	closedAt             time.Time
	closedTS             time.Time // the queue:closed event's ts (the pass that closed the room)
	purchase             result
	wsErr, heartbeatErrs error
}

type roomEvent struct {
	Type   string          `json:"type"`
	SaleID string          `json:"saleId"`
	Data   json.RawMessage `json:"data"`
	TS     time.Time       `json:"ts"`
	// at is when the client read it off its WebSocket.
	at time.Time
}

// runRoom is Run for Mode "room".
func (r *Runner) runRoom(ctx context.Context) (Report, error) {
	cfg := r.cfg
	var sale struct {
		ID uuid.UUID `json:"id"`
	}
	now := time.Now().UTC()
	far := now.Add(time.Hour)
	body := map[string]any{
		"name": "Load test room " + now.Format(time.RFC3339Nano), "priceCents": 1000, "currency": "EUR",
		"totalStock": cfg.Stock, "perUserLimit": cfg.Limit,
		"startsAt": far.Format(time.RFC3339Nano), "endsAt": far.Add(time.Hour).Format(time.RFC3339Nano),
		"waitingRoom": map[string]any{"enabled": true, "admitPerSecond": cfg.AdmitRate,
			"admissionTtl": int(cfg.AdmissionTTL / time.Second), "autoRate": cfg.AutoRate},
	}
	if cfg.Shards > 0 {
		body["shards"] = cfg.Shards
	}
	if err := r.c.json(ctx, call{method: http.MethodPost, path: "/v1/admin/sales", token: r.admin, ip: "192.0.2.1", body: body}, &sale); err != nil {
		return Report{}, fmt.Errorf("create sale: %w", err)
	}
	saleID := sale.ID
	users := make([]roomUser, len(r.users))
	queuePath := "/v1/sales/" + saleID.String() + "/queue"

	// Everyone joins before the start, 64 at a time: the join order is the order of the answers.
	if err := r.each(ctx, "join", func(i int) error {
		u := r.users[i]
		a, err := r.c.do(ctx, call{method: http.MethodPost, path: queuePath, token: u.token, ip: u.ip, node: u.node})
		if err == nil && a.status != http.StatusOK {
			err = fmt.Errorf("join: %d %s", a.status, a.body)
		}
		users[i].joinedAt = time.Now()
		return err
	}); err != nil {
		return Report{}, err
	}
	// A WebSocket per user, for queue:admitted (its own) and queue:closed.
	conns := make([]*websocket.Conn, len(r.users))
	if err := r.each(ctx, "connect", func(i int) error {
		u := r.users[i]
		base := r.cfg.URLs[u.node%len(r.cfg.URLs)]
		c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/v1/ws?sale="+saleID.String(),
			&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {"fs_access=" + u.token}, "X-Forwarded-For": {u.ip}}})
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close() // the handshake's answer; the connection itself lives on in c
		}
		if err != nil {
			return fmt.Errorf("websocket of user %d: %w", i, err)
		}
		c.SetReadLimit(1 << 20)
		conns[i] = c
		return nil
	}); err != nil {
		return Report{}, err
	}
	defer func() {
		for _, c := range conns {
			if c != nil {
				_ = c.CloseNow()
			}
		}
	}()

	// The start: a second from now.
	start := time.Now().Add(time.Second).UTC()
	if err := r.c.json(ctx, call{method: http.MethodPatch, path: "/v1/admin/sales/" + saleID.String(), token: r.admin, ip: "192.0.2.1",
		body: map[string]any{"startsAt": start.Format(time.RFC3339Nano)}}, nil); err != nil {
		return Report{}, fmt.Errorf("move the start: %w", err)
	}
	m0, o0, cerr := r.counters(ctx)
	cpuBefore := cpuTimes(cfg.CPUProcesses)
	began := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, time.Duration(float64(cfg.Stock)/float64(max(cfg.AdmitRate, 1))*float64(time.Second))*2+cfg.AdmissionTTL+30*time.Second)
	defer cancel()
	var answered atomic.Int64
	stop := r.progress(&answered, len(r.users))
	var wg sync.WaitGroup
	for i := range r.users {
		wg.Go(func() {
			defer answered.Add(1)
			r.roomUser(runCtx, saleID, i, conns[i], &users[i], began)
		})
	}
	wg.Wait()
	stop()

	var results []result
	for _, u := range users {
		if u.admittedSeen {
			results = append(results, u.purchase)
		}
	}
	rep := r.summarise(results)
	rep.CPU = cpuUse(cfg.CPUProcesses, cpuBefore, cpuTimes(cfg.CPUProcesses), len(results))
	rep.Label, rep.Mode, rep.Users, rep.Stock, rep.Limit, rep.PoolSize = cfg.Label, cfg.Mode, cfg.Users, cfg.Stock, cfg.Limit, cfg.PoolSize
	if err := r.verify(ctx, saleID, began, results, &rep); err != nil {
		return rep, err
	}
	// The buyers are the admitted: the demand the verifier compares with is theirs, and the
	// stock must sell out whenever the joiners could buy it all.
	rep.Problems = slices.DeleteFunc(rep.Problems, func(p string) bool { return strings.Contains(p, "were demanded and in stock") })
	room, problems, err := r.verifyRoom(ctx, saleID, users)
	if err != nil {
		return rep, err
	}
	rep.Room = &room
	rep.Problems = append(rep.Problems, problems...)
	if want := min(cfg.Stock, len(r.users)*cfg.Limit); rep.Sold != want {
		rep.Problems = append(rep.Problems, fmt.Sprintf("sold %d units, want exactly %d (the stock, or all the joiners could buy)", rep.Sold, want))
	}
	if cerr == nil {
		var m1, o1 map[string]int
		if m1, o1, cerr = r.counters(ctx); cerr == nil {
			compareCounters(&rep, m0, o0, m1, o1)
		}
	}
	if cerr != nil {
		rep.CountersNote = "the system's counters were not read: " + cerr.Error()
	}
	rep.Correct = len(rep.Problems) == 0
	return rep, nil
}

// roomUser waits for its admission (then buys at once) or for the room to close, polling its
// place every 15 s as the heartbeat that keeps it (ROOM_HEARTBEAT_GRACE is 30 s by default).
func (r *Runner) roomUser(ctx context.Context, saleID uuid.UUID, i int, conn *websocket.Conn, out *roomUser, began time.Time) {
	u := r.users[i]
	events := make(chan roomEvent, 16)
	go func() {
		defer close(events)
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				if ctx.Err() == nil {
					out.wsErr = err
				}
				return
			}
			e := roomEvent{at: time.Now()}
			if json.Unmarshal(data, &e) == nil && e.SaleID == saleID.String() {
				events <- e
			}
		}
	}()
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			a, err := r.c.do(ctx, call{method: http.MethodGet, path: "/v1/sales/" + saleID.String() + "/queue", token: u.token, ip: u.ip, node: u.node})
			if err == nil && a.status != http.StatusOK {
				out.heartbeatErrs = fmt.Errorf("poll: %d %s", a.status, a.body)
			}
		case e, open := <-events:
			if !open {
				return
			}
			switch e.Type {
			case "queue:admitted":
				var d struct {
					ExpiresAt time.Time `json:"expiresAt"`
				}
				_ = json.Unmarshal(e.Data, &d)
				out.admittedTS, out.admittedUntil, out.admittedSeen = e.TS, d.ExpiresAt, true
				out.purchase = r.purchase(ctx, saleID, i, began, time.Now())
				return
			case "queue:closed":
				out.closedAt, out.closedTS = e.at, e.TS
				return
			}
		}
	}
}

// verifyRoom checks the room's promises from what the users saw and what PostgreSQL holds.
func (r *Runner) verifyRoom(ctx context.Context, saleID uuid.UUID, users []roomUser) (RoomReport, []string, error) {
	var rep RoomReport
	var problems []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	conn, err := pgx.Connect(ctx, r.cfg.DatabaseURL)
	if err != nil {
		return rep, nil, fmt.Errorf("verify room: %w", err)
	}
	defer conn.Close(ctx)
	type sold struct {
		at  time.Time
		qty int
	}
	rows, err := conn.Query(ctx, `SELECT created_at, quantity FROM orders WHERE sale_id = $1 AND status = 'confirmed' ORDER BY created_at`, saleID)
	if err != nil {
		return rep, nil, fmt.Errorf("verify room: %w", err)
	}
	orders, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sold, error) {
		var s sold
		return s, row.Scan(&s.at, &s.qty)
	})
	if err != nil {
		return rep, nil, fmt.Errorf("verify room: %w", err)
	}
	rep.Joined = len(users)

	// Admission order: by the pass's time; users admitted by one pass share the mean rank.
	type adm struct {
		user int
		ts   time.Time
		// expires: the admission's end if its purchase was not accepted (it expired unused and
		// freed its share then); zero if it bought.
		expires time.Time
	}
	var admissions []adm
	for i, u := range users {
		if u.wsErr != nil {
			problems = append(problems, fmt.Sprintf("user %d lost its WebSocket: %v", i, u.wsErr))
		}
		if u.admittedSeen {
			a := adm{user: i, ts: u.admittedTS}
			if u.purchase.status != http.StatusAccepted {
				a.expires = u.admittedUntil
			}
			admissions = append(admissions, a)
		}
	}
	rep.Admitted = len(admissions)
	sort.SliceStable(admissions, func(a, b int) bool { return admissions[a].ts.Before(admissions[b].ts) })

	// Never admitted beyond what the stock can serve: at each admission (the pass's time), the
	// admissions out (neither bought nor expired), times the limit, against the units not yet
	// sold. The purchases' times are their reservations' (orders.created_at), the expiries the
	// admissions' own ends: every clock is the system's. A user whose WebSocket was lost before
	// its queue:admitted is not seen admitted: the check is then looser, and the lost socket
	// fails the run anyway.
	for k, a := range admissions {
		if k+1 < len(admissions) && admissions[k+1].ts.Equal(a.ts) {
			continue // the pass's last admission counts them all
		}
		given := k + 1
		for _, b := range admissions[:given] {
			if !b.expires.IsZero() && !b.expires.After(a.ts) {
				given-- // expired unused before this admission: its share was free again
			}
		}
		bought, units := 0, 0
		for _, o := range orders {
			if o.at.Before(a.ts) {
				bought++
				units += o.qty
			}
		}
		remaining := r.cfg.Stock - units
		servable := (remaining + r.cfg.Limit - 1) / r.cfg.Limit
		if over := (given - bought) - servable; over > rep.MaxOverAdmitted {
			rep.MaxOverAdmitted = over
		}
	}
	check(rep.MaxOverAdmitted == 0, "admitted up to %d shoppers beyond what the remaining stock could serve", rep.MaxOverAdmitted)
	if n := len(admissions); n > 1 {
		if span := admissions[n-1].ts.Sub(admissions[0].ts).Seconds(); span > 0 {
			rep.AdmitRate = float64(n-1) / span
		}
	}

	// Join time does not predict admission order (Spearman, tie-averaged ranks).
	if n := len(admissions); n >= 30 {
		joinRank := rankBy(len(admissions), func(k int) float64 { return float64(users[admissions[k].user].joinedAt.UnixNano()) })
		admitRank := rankBy(len(admissions), func(k int) float64 { return float64(admissions[k].ts.UnixNano()) })
		rep.Rho = pearson(joinRank, admitRank)
		rep.RhoBound = 4 / math.Sqrt(float64(n-1))
		check(math.Abs(rep.Rho) <= rep.RhoBound, "join order predicts admission order: Spearman rho %.3f beyond %.3f", rep.Rho, rep.RhoBound)
	}

	// Every waiting client told "closed" within 1 s of the sell-out.
	if len(orders) > 0 {
		soldOut := orders[len(orders)-1].at
		for _, u := range users {
			if u.admittedSeen {
				continue
			}
			rep.NotAdmitted++
			if u.closedAt.IsZero() {
				continue
			}
			rep.ToldClosed++
			rep.ClosedLagMs = max(rep.ClosedLagMs, ms(u.closedAt.Sub(soldOut)))
			rep.ClosingPassMs = max(rep.ClosingPassMs, ms(u.closedTS.Sub(soldOut)))
		}
	}
	check(rep.ToldClosed == rep.NotAdmitted, "%d of %d waiting users were never told the room closed", rep.NotAdmitted-rep.ToldClosed, rep.NotAdmitted)
	check(rep.ClosedLagMs <= 1000, "a waiting user was told the room closed %.0f ms after the sell-out (more than 1 s)", rep.ClosedLagMs)
	return rep, problems, nil
}

// rankBy ranks n items by key, ties given their mean rank.
func rankBy(n int, key func(int) float64) []float64 {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return key(idx[a]) < key(idx[b]) })
	ranks := make([]float64, n)
	for i := 0; i < n; {
		j := i
		for j+1 < n && key(idx[j+1]) == key(idx[i]) {
			j++
		}
		mean := float64(i+j) / 2
		for k := i; k <= j; k++ {
			ranks[idx[k]] = mean
		}
		i = j + 1
	}
	return ranks
}

func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return 0
	}
	return sxy / math.Sqrt(sxx*syy)
}

// each runs fn for every user, 64 at a time, and returns the first error.
func (r *Runner) each(ctx context.Context, what string, fn func(i int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(r.users) {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s: %w", what, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}
