package ws

// Benchmarks of the hub's fan-out.
//
// BenchmarkFanout10k holds 10,000 real WebSocket connections on one hub and measures, per
// connection, what the server side costs (heap, goroutine stacks, goroutines) and, per
// broadcast, how long Deliver takes to reach every client:
//
//	go test -run='^$' -bench=Fanout10k -benchtime=5x ./internal/adapters/ws/
//
// 10,000 client sockets and 10,000 server sockets do not fit in one process under an open-files
// limit of 20,000, so the clients live in a child process: the benchmark re-executes its own
// test binary with -test.run=^TestWSClientHelper$ and FLASHSALE_WS_CLIENTS / FLASHSALE_WS_URL
// set. The helper and the benchmark talk over the child's stdin/stdout, one line each, every
// line the helper writes starting with "WSCLIENT " (anything else, e.g. the test framework's
// PASS, is ignored):
//
//	child:  WSCLIENT hello                 the limit is raised, waiting to be told to dial
//	parent: dial                           (after measuring the server's baseline)
//	child:  WSCLIENT ready <n> <dial time>  every connection is open and being read
//	child:  WSCLIENT round <seq> <n> <l0> <l1> ... <l(n-1)>
//	                                       every client has event <seq>; li is client i's
//	                                       latency in ns: its receive time minus
//	                                       data.sentAtUnixNano (wall clock, same machine)
//	child:  WSCLIENT lost <i> <error>      a connection ended (fatal for the benchmark)
//	parent: closes stdin                   the helper returns; its sockets close with it
//
// FLASHSALE_WS_HEAPPROFILE=<file> writes a heap profile of the server side once the connections
// are established.
//
// The latency of a client is taken right after its Read returns, before the message is parsed;
// it includes the client side's scheduling: both processes share the machine's cores, and the
// child runs one reading goroutine per connection, as 10,000 browsers would not.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

const (
	envClients = "FLASHSALE_WS_CLIENTS"
	envURL     = "FLASHSALE_WS_URL"
	linePrefix = "WSCLIENT "

	fanoutConns  = 10_000
	dialParallel = 200
	roundTimeout = 60 * time.Second
)

// raiseNoFile lifts the soft open-files limit to the hard one.
func raiseNoFile() (syscall.Rlimit, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return l, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return l, err
		}
	}
	return l, nil
}

// fanoutData is the data of the benchmark's inventory:updated events: the shape of the real
// one (domain.InventoryData) plus what the helper needs to time it.
type fanoutData struct {
	TotalStock     int    `json:"totalStock"`
	Remaining      int    `json:"remaining"`
	Status         string `json:"status"`
	Seq            int64  `json:"seq"`
	SentAtUnixNano int64  `json:"sentAtUnixNano"`
}

// serverSide is the server-side footprint of the test process.
type serverSide struct {
	heapInuse, stackInuse uint64
	goroutines            int
	rss                   uint64
}

func measureServer() serverSide {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return serverSide{heapInuse: m.HeapInuse, stackInuse: m.StackInuse, goroutines: runtime.NumGoroutine(), rss: rssBytes()}
}

// rssBytes is the process's resident set (0 if /proc is not there).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// procCPU is the user+system CPU time a process has used so far (0 if /proc is not there);
// /proc/<pid>/stat counts in clock ticks, 100 a second on Linux.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func perConn(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// helperProc is the running client helper.
type helperProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // the helper's protocol lines, prefix stripped; closed at EOF
	stderr *bytes.Buffer
}

func startHelper(b *testing.B, n int, url string) *helperProc {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWSClientHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envClients+"="+strconv.Itoa(n), envURL+"="+url)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	h := &helperProc{cmd: cmd, stdin: stdin, lines: make(chan string, 16), stderr: &bytes.Buffer{}}
	cmd.Stderr = &lockedWriter{w: h.stderr}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(h.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			if l, ok := strings.CutPrefix(sc.Text(), linePrefix); ok {
				h.lines <- l
			}
		}
	}()
	return h
}

// next is the helper's next line; a lost connection, an early exit or a timeout is fatal.
func (h *helperProc) next(b *testing.B, what string) string {
	b.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			b.Fatalf("client helper exited while waiting for %s; stderr:\n%s", what, h.stderrTail())
		}
		if strings.HasPrefix(l, "lost ") || strings.HasPrefix(l, "fail ") {
			b.Fatalf("client helper: %s (waiting for %s)", l, what)
		}
		return l
	case <-time.After(roundTimeout):
		b.Fatalf("no %s from the client helper within %v; stderr:\n%s", what, roundTimeout, h.stderrTail())
	}
	return ""
}

func (h *helperProc) stderrTail() string {
	s := h.stderr.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// stop closes the helper's stdin (it then returns and exits) and waits for it.
func (h *helperProc) stop() {
	_ = h.stdin.Close()
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// BenchmarkFanout10k: one hub, 10,000 WebSocket connections (clients in a child process), one
// inventory:updated per iteration delivered to all of them. An iteration (ns/op) lasts from
// Deliver until the helper has reported that every client has the event (it includes sending
// those 10,000 latencies back); the latencies themselves are the p50/p99/max metrics, and
// all-ms is the time until the last client had it (mean over iterations).
func BenchmarkFanout10k(b *testing.B) {
	const n = fanoutConns
	lim, err := raiseNoFile()
	if err != nil {
		b.Fatalf("raising RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur < n+1000 {
		b.Skipf("open-files limit %d is too low for %d server sockets", lim.Cur, n)
	}

	tenant, sale := uuid.New(), uuid.New()
	hub := NewHub(Config{MaxConnections: 2 * n, SendBuffer: 16, PingInterval: time.Minute, WriteTimeout: 10 * time.Second},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	var serveErrs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := hub.Serve(w, r, Identity{TenantID: tenant}, nil); err != nil {
			serveErrs.Add(1)
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	helper := startHelper(b, n, "ws"+strings.TrimPrefix(srv.URL, "http"))
	defer helper.stop()
	if l := helper.next(b, "hello"); l != "hello" {
		b.Fatalf("client helper said %q, want hello", l)
	}

	before := measureServer()
	if _, err := io.WriteString(helper.stdin, "dial\n"); err != nil {
		b.Fatal(err)
	}
	ready := helper.next(b, "ready")
	if !strings.HasPrefix(ready, "ready ") {
		b.Fatalf("client helper said %q, want ready", ready)
	}
	// Dial returns once the 101 is read; the server may still be starting write goroutines.
	// Wait for the count to hold still.
	deadline := time.Now().Add(30 * time.Second)
	for stable, last := 0, -1; stable < 5; {
		if time.Now().After(deadline) {
			b.Fatalf("server side did not settle: %d connections, %d goroutines", hub.Connections(), runtime.NumGoroutine())
		}
		g := runtime.NumGoroutine()
		if g == last && hub.Connections() == n {
			stable++
		} else {
			stable = 0
		}
		last = g
		time.Sleep(50 * time.Millisecond)
	}
	after := measureServer()
	if path := os.Getenv("FLASHSALE_WS_HEAPPROFILE"); path != "" {
		// What the connections hold, e.g. go tool pprof -sample_index=inuse_space -top
		writeHeapProfile(b, path)
	}
	if c := hub.Connections(); c != n || serveErrs.Load() != 0 {
		b.Fatalf("hub holds %d connections (%d refused), want %d", c, serveErrs.Load(), n)
	}

	var seq int64
	// round delivers one event and returns the n latencies, Deliver's own duration and the
	// time until the helper reported back.
	round := func() ([]int64, time.Duration, time.Duration) {
		seq++
		sent := time.Now()
		data, _ := json.Marshal(fanoutData{TotalStock: 1000, Remaining: 1000 - int(seq), Status: "active",
			Seq: seq, SentAtUnixNano: sent.UnixNano()})
		hub.Deliver(Event{Type: "inventory:updated", TenantID: tenant, SaleID: sale, Data: data, TS: sent})
		delivered := time.Since(sent)
		l := helper.next(b, fmt.Sprintf("round %d", seq))
		reported := time.Since(sent)
		f := strings.Fields(l)
		if len(f) != n+3 || f[0] != "round" || f[1] != strconv.FormatInt(seq, 10) {
			b.Fatalf("client helper said %.80q..., want round %d with %d latencies", l, seq, n)
		}
		lat := make([]int64, n)
		for i := range lat {
			if lat[i], err = strconv.ParseInt(f[3+i], 10, 64); err != nil {
				b.Fatal(err)
			}
		}
		return lat, delivered, reported
	}

	// One round outside the measurement: first writes on every connection grow stacks, etc.
	warm, _, _ := round()
	warmAll := slices.Max(warm)

	var all []int64
	var totals []int64
	var deliverNs int64
	serverCPU0, clientCPU0 := procCPU(os.Getpid()), procCPU(helper.cmd.Process.Pid)
	for b.Loop() {
		lat, d, _ := round()
		all = append(all, lat...)
		totals = append(totals, slices.Max(lat))
		deliverNs += d.Nanoseconds()
	}
	b.StopTimer()
	rounds := len(totals)
	serverCPU := (procCPU(os.Getpid()) - serverCPU0) / time.Duration(rounds)
	clientCPU := (procCPU(helper.cmd.Process.Pid) - clientCPU0) / time.Duration(rounds)
	if dropped := hub.Dropped(); dropped != 0 {
		b.Errorf("the hub dropped %d clients as slow", dropped)
	}
	steady := measureServer()

	slices.Sort(all)
	var totalSum int64
	for _, t := range totals {
		totalSum += t
	}
	p50, p99, pmax := percentile(all, 0.50), percentile(all, 0.99), all[len(all)-1]
	allMean, allMax := totalSum/int64(rounds), slices.Max(totals)

	heapPer := perConn(after.heapInuse, before.heapInuse, n)
	stackPer := perConn(after.stackInuse, before.stackInuse, n)
	gorPer := float64(after.goroutines-before.goroutines) / float64(n)
	b.ReportMetric(heapPer, "heap-B/conn")
	b.ReportMetric(stackPer, "stack-B/conn")
	b.ReportMetric(gorPer, "goroutines/conn")
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(pmax), "max-ms")
	b.ReportMetric(ms(allMean), "all-ms")
	b.ReportMetric(ms(serverCPU.Nanoseconds()), "server-cpu-ms/op")

	b.Logf("fanout %d conns: server heap %.0f B/conn, stacks %.0f B/conn, %.2f goroutines/conn (heap %d -> %d B, stacks %d -> %d B, goroutines %d -> %d, RSS %.0f B/conn)",
		n, heapPer, stackPer, gorPer, before.heapInuse, after.heapInuse, before.stackInuse, after.stackInuse,
		before.goroutines, after.goroutines, perConn(after.rss, before.rss, n))
	perRound := make([]string, rounds)
	for i, t := range totals {
		perRound[i] = fmt.Sprintf("%.0f", ms(t))
	}
	b.Logf("fanout %d conns, %d broadcasts (%d latencies): p50 %.2fms p99 %.2fms max %.2fms; all reached after %.2fms mean, %.2fms worst (per broadcast ms: %s); Deliver call %.2fms mean; warm-up broadcast reached all after %.2fms",
		n, rounds, len(all), ms(p50), ms(p99), ms(pmax), ms(allMean), ms(allMax), strings.Join(perRound, " "), ms(deliverNs/int64(rounds)), ms(warmAll))
	b.Logf("fanout %d conns: CPU per broadcast: server %v, client helper %v (includes reporting the latencies); load average %s",
		n, serverCPU, clientCPU, loadAvg())
	b.Logf("fanout %d conns after the broadcasts: heap %.0f B/conn, stacks %.0f B/conn; helper: %s",
		n, perConn(steady.heapInuse, before.heapInuse, n), perConn(steady.stackInuse, before.stackInuse, n), ready)

	// Tear down: the helper exits, its sockets close, the server's handlers return.
	helper.stop()
	for deadline := time.Now().Add(20 * time.Second); hub.Connections() > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if c := hub.Connections(); c != 0 {
		b.Logf("%d connections still open 20s after the clients exited", c)
	}
}

// TestWSClientHelper is BenchmarkFanout10k's client side, run in a child process; without
// FLASHSALE_WS_CLIENTS it is skipped.
func TestWSClientHelper(t *testing.T) {
	nStr := os.Getenv(envClients)
	if nStr == "" {
		t.Skip("the client side of BenchmarkFanout10k; runs only as its child process")
	}
	n, err := strconv.Atoi(nStr)
	url := os.Getenv(envURL)
	if err != nil || n <= 0 || url == "" {
		t.Fatalf("%s=%q %s=%q", envClients, nStr, envURL, url)
	}

	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	var outMu sync.Mutex
	say := func(line []byte) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = out.WriteString(linePrefix)
		_, _ = out.Write(line)
		_ = out.WriteByte('\n')
		_ = out.Flush()
	}

	if _, err := raiseNoFile(); err != nil {
		say(fmt.Appendf(nil, "fail raising RLIMIT_NOFILE: %v", err))
		t.Fatal(err)
	}
	say([]byte("hello"))
	stdin := bufio.NewScanner(os.Stdin)
	if !stdin.Scan() || stdin.Text() != "dial" {
		return // the parent went away
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopping atomic.Bool

	// rounds collects each event's latencies until every client has it.
	type roundLats struct {
		lats []int64
		got  int
	}
	var mu sync.Mutex
	rounds := map[int64]*roundLats{}
	record := func(i int, seq, lat int64) {
		mu.Lock()
		r := rounds[seq]
		if r == nil {
			r = &roundLats{lats: make([]int64, n)}
			rounds[seq] = r
		}
		r.lats[i] = lat
		r.got++
		complete := r.got == n
		if complete {
			delete(rounds, seq)
		}
		mu.Unlock()
		if complete {
			line := make([]byte, 0, 10*n+32)
			line = fmt.Appendf(line, "round %d %d", seq, n)
			for _, l := range r.lats {
				line = append(line, ' ')
				line = strconv.AppendInt(line, l, 10)
			}
			say(line)
		}
	}

	var lost atomic.Int64
	read := func(i int, c *websocket.Conn) {
		for {
			_, msg, err := c.Read(ctx)
			recv := time.Now().UnixNano()
			if err != nil {
				if !stopping.Load() && lost.Add(1) <= 5 {
					say(fmt.Appendf(nil, "lost %d %v", i, err))
				}
				return
			}
			var m struct {
				Type string     `json:"type"`
				Data fanoutData `json:"data"`
			}
			if json.Unmarshal(msg, &m) != nil || m.Type != "inventory:updated" {
				say(fmt.Appendf(nil, "lost %d unexpected message %.200q", i, msg))
				continue
			}
			record(i, m.Data.Seq, recv-m.Data.SentAtUnixNano)
		}
	}

	// Dial every connection, dialParallel at a time, each then read until the end.
	start := time.Now()
	conns := make([]*websocket.Conn, n)
	sem := make(chan struct{}, dialParallel)
	var wg sync.WaitGroup
	var dialErr atomic.Value
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var c *websocket.Conn
			var err error
			for attempt := range 3 {
				dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
				c, _, err = websocket.Dial(dctx, url, nil)
				dcancel()
				if err == nil {
					break
				}
				time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
			}
			if err != nil {
				dialErr.CompareAndSwap(nil, fmt.Errorf("dial %d: %w", i, err))
				return
			}
			c.SetReadLimit(1 << 20)
			conns[i] = c
			go read(i, c)
		}()
		if dialErr.Load() != nil {
			break
		}
	}
	wg.Wait()
	if err, _ := dialErr.Load().(error); err != nil {
		say(fmt.Appendf(nil, "fail %v", err))
		t.Fatal(err)
	}
	say(fmt.Appendf(nil, "ready %d %v", n, time.Since(start).Round(time.Millisecond)))

	// Run until the parent closes stdin; the process's exit closes the sockets.
	for stdin.Scan() {
	}
	stopping.Store(true)
}

// BenchmarkDeliver: Deliver alone, no network — the clients are registered in the hub directly.
// Without writers their send buffers are emptied (outside the timer) before they fill: ns/op is
// the bare fan-out (encoding, filtering, one queued event each). With writers every
// client has a goroutine parked on its buffer, as Hub.write is, so each send also readies a
// goroutine, and those compete with Deliver for the CPUs: ns/op is then how long the caller of
// Deliver (and the hub's read lock) is held.
func BenchmarkDeliver(b *testing.B) {
	for _, bc := range []struct {
		name            string
		clients, others int // matching clients; clients of another tenant
		writers         bool
		// private: the event is one user's (a waiting room's queue:admitted), among clients that
		// each belong to a user of their own
		private bool
	}{
		{"clients=1000", 1000, 0, false, false},
		{"clients=10000", 10_000, 0, false, false},
		{"clients=100+other-tenant=9900", 100, 9900, false, false},
		{"clients=10000+writers", 10_000, 0, true, false},
		{"private-of-10000", 10_000, 0, false, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const buf = 16
			tenant, other, sale := uuid.New(), uuid.New(), uuid.New()
			hub := NewHub(Config{MaxConnections: 2 * (bc.clients + bc.others), SendBuffer: buf,
				PingInterval: time.Minute, WriteTimeout: 10 * time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			stop := make(chan struct{})
			var writers sync.WaitGroup
			defer func() { close(stop); writers.Wait() }()
			var matching []*client
			for i := range bc.clients + bc.others {
				id := Identity{TenantID: tenant}
				if bc.private {
					u := uuid.New()
					id.UserID = &u
				}
				if i >= bc.clients {
					id.TenantID = other
				}
				c := newClient(id, nil)
				if !hub.add(c) {
					b.Fatal("hub full")
				}
				if i < bc.clients {
					matching = append(matching, c)
					if bc.writers {
						writers.Go(func() {
							for {
								select {
								case <-c.wake:
									_, _ = c.take(nil, true)
								case <-stop:
									return
								}
							}
						})
					}
				}
			}
			data := []byte(`{"totalStock":1000,"remaining":420,"status":"active"}`)
			ts := time.Now()
			i := 0
			e := Event{Type: "inventory:updated", TenantID: tenant, SaleID: sale, Data: data, TS: ts}
			if bc.private {
				e.Type, e.UserID = "queue:admitted", matching[0].id.UserID
			}
			for b.Loop() {
				hub.Deliver(e)
				if i++; !bc.writers && i%(buf-1) == 0 {
					b.StopTimer()
					for _, c := range matching {
						_, _ = c.take(nil, true)
					}
					b.StartTimer()
				}
			}
			if d := hub.Dropped(); d != 0 {
				b.Fatalf("%d clients dropped", d)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(bc.clients+bc.others), "ns/client")
		})
	}
}
