package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Counters is what the system itself counted of a run's purchases, by outcome (accepted,
// sold_out, limit, ...: flashsale_purchases_total), read from every API node's GET /metrics
// (what Prometheus scrapes and the dashboard's queries add up) and GET /v1/admin/overview (what
// the control room shows), before and after the run.
type Counters struct {
	Metrics  map[string]int `json:"metrics"`
	Overview map[string]int `json:"overview"`
	// Agree: both saw exactly the answers the load tool received.
	Agree bool `json:"agree"`
}

// outcomeOf is the flashsale_purchases_total outcome of an answer the load tool received.
func outcomeOf(key string) string {
	switch {
	case key == "202":
		return "accepted"
	case key == "409 sold-out":
		return "sold_out"
	case key == "409 purchase-limit-exceeded":
		return "limit"
	case key == "409 sale-not-active":
		return "not_active"
	case strings.HasPrefix(key, "429"):
		return "rate_limited"
	case strings.HasPrefix(key, "5"):
		return "failed"
	case strings.HasPrefix(key, "2"):
		return "replayed"
	}
	return "rejected"
}

// counters reads the purchase counters of every API node, summed.
func (r *Runner) counters(ctx context.Context) (metrics, overview map[string]int, err error) {
	metrics, overview = map[string]int{}, map[string]int{}
	for node := range r.c.bases {
		a, err := r.c.do(ctx, call{method: http.MethodGet, path: "/metrics", node: node})
		if err != nil || a.status != http.StatusOK {
			return nil, nil, fmt.Errorf("GET /metrics of node %d: %d %v", node, a.status, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(a.body))
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			rest, ok := strings.CutPrefix(line, `flashsale_purchases_total{outcome="`)
			if !ok {
				continue
			}
			outcome, value, ok := strings.Cut(rest, `"} `)
			if n, err := strconv.ParseFloat(value, 64); ok && err == nil {
				metrics[outcome] += int(n)
			}
		}
		var ov struct {
			Purchases []struct {
				Outcome string `json:"outcome"`
				Total   int    `json:"total"`
			} `json:"purchases"`
		}
		if err := r.c.json(ctx, call{method: http.MethodGet, path: "/v1/admin/overview", token: r.admin, ip: "192.0.2.1", node: node}, &ov); err != nil {
			return nil, nil, err
		}
		for _, p := range ov.Purchases {
			overview[p.Outcome] += p.Total
		}
	}
	return metrics, overview, nil
}

// compareCounters sets rep.Counters from the counters before and after the run, and reports a
// problem when the system counted other answers than the load tool received.
func compareCounters(rep *Report, m0, o0, m1, o1 map[string]int) {
	want := map[string]int{}
	for key, n := range rep.Statuses {
		if key != "error" {
			want[outcomeOf(key)] += n
		}
	}
	diff := func(before, after map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range after {
			if d := v - before[k]; d != 0 {
				out[k] = d
			}
		}
		return out
	}
	c := &Counters{Metrics: diff(m0, m1), Overview: diff(o0, o1)}
	same := func(got map[string]int) bool {
		if len(got) != len(want) {
			return false
		}
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	}
	c.Agree = same(c.Metrics) && same(c.Overview)
	rep.Counters = c
	if !c.Agree {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the system counted other answers than were received: /metrics %v, overview %v, received %v",
			c.Metrics, c.Overview, want))
	}
}
