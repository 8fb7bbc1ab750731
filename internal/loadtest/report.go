package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Summary aggregates the runs of one target.
type Summary struct {
	Label         string   `json:"label"`
	Runs          int      `json:"runs"`
	CorrectRuns   int      `json:"correctRuns"`
	OversoldRuns  int      `json:"oversoldRuns"`
	UndersoldRuns int      `json:"undersoldRuns"`
	P99Ms         Spread   `json:"p99Ms"`
	AnsweredInMs  Spread   `json:"answeredInMs"`
	Throughput    Spread   `json:"throughputPerSec"`
	DurableAfter  Spread   `json:"lastOrderDurableAfterMs"`
	PeakDBConns   int      `json:"peakDbConnectionsInUse"`
	PoolSize      int      `json:"poolSize"`
	Reports       []Report `json:"runsDetail"`
}

// Spread is min / median / max over runs.
type Spread struct{ Min, Median, Max float64 }

func spread(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return Spread{Min: s[0], Median: s[len(s)/2], Max: s[len(s)-1]}
}

// Summarise folds runs into a summary.
func Summarise(label string, reports []Report) Summary {
	s := Summary{Label: label, Runs: len(reports), Reports: reports}
	var p99, answered, tput, durable []float64
	for _, r := range reports {
		if r.Correct {
			s.CorrectRuns++
		}
		if r.Oversold > 0 || r.Sold > r.Stock {
			s.OversoldRuns++
		}
		if r.Undersold > 0 {
			s.UndersoldRuns++
		}
		p99 = append(p99, r.Latency.P99)
		answered = append(answered, r.AnsweredIn)
		tput = append(tput, r.Throughput)
		durable = append(durable, r.DurableAfter)
		s.PeakDBConns = max(s.PeakDBConns, r.PeakDBConns)
		s.PoolSize = r.PoolSize
	}
	s.P99Ms, s.AnsweredInMs, s.Throughput, s.DurableAfter = spread(p99), spread(answered), spread(tput), spread(durable)
	return s
}

// PrintRun writes a human summary of one run.
func PrintRun(w io.Writer, r Report) {
	verdict := "CORRECT"
	if !r.Correct {
		verdict = "WRONG: " + strings.Join(r.Problems, "; ")
	}
	fmt.Fprintf(w, "%s %s: %d requests, %d users, stock %d, limit %d -> %s\n", r.Label, r.Mode, r.Requests, r.Users, r.Stock, r.Limit, verdict)
	fmt.Fprintf(w, "  answered in %.0f ms (%.0f req/s); latency ms p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
		r.AnsweredIn, r.Throughput, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max)
	fmt.Fprintf(w, "  sold %d (accepted %d orders), remaining %d, last order durable after %.0f ms; DB connections in use peak %d of %d (%.0f%%)\n",
		r.Sold, r.Accepted, r.Remaining, r.DurableAfter, r.PeakDBConns, r.PoolSize, 100*float64(r.PeakDBConns)/float64(max(r.PoolSize, 1)))
	keys := make([]string, 0, len(r.Statuses))
	for k := range r.Statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, r.Statuses[k])
	}
	fmt.Fprintf(w, "  statuses: %s\n", strings.Join(parts, ", "))
	for _, n := range r.Nodes {
		fmt.Fprintf(w, "  API node %s: %d requests, %d accepted\n", n.URL, n.Requests, n.Accepted)
	}
	if room := r.Room; room != nil {
		fmt.Fprintf(w, "  waiting room: %d joined before the start, %d admitted (%.0f/s), at most %d beyond what the stock served; "+
			"Spearman rho join vs admission %.3f (bound %.3f); %d of %d waiting told closed, the last %.0f ms after the sell-out (the closing pass at %.0f ms)\n",
			room.Joined, room.Admitted, room.AdmitRate, room.MaxOverAdmitted, room.Rho, room.RhoBound, room.ToldClosed,
			room.NotAdmitted, room.ClosedLagMs, room.ClosingPassMs)
	}
	switch {
	case r.Counters != nil && r.Counters.Agree:
		fmt.Fprintf(w, "  the system counted the same answers: /metrics and the control room's overview %v\n", r.Counters.Metrics)
	case r.Counters != nil:
		fmt.Fprintf(w, "  the system counted other answers: /metrics %v, overview %v\n", r.Counters.Metrics, r.Counters.Overview)
	case r.CountersNote != "":
		fmt.Fprintf(w, "  %s\n", r.CountersNote)
	}
	if len(r.CPU) > 0 {
		parts := make([]string, len(r.CPU))
		for i, c := range r.CPU {
			parts[i] = fmt.Sprintf("%s %.3f (%d processes)", c.Process, c.PerThousand, c.Processes)
			if c.Processes > 1 {
				parts[i] = fmt.Sprintf("%s %.3f (%d processes, the busiest %.3f)", c.Process, c.PerThousand, c.Processes, c.BusiestPerThousand)
			}
		}
		fmt.Fprintf(w, "  CPU seconds per 1,000 requests: %s\n", strings.Join(parts, ", "))
		for _, c := range r.CPU {
			if c.Process != "redis-server" || len(c.Each) < 2 {
				continue // the Redis servers one by one: a Cluster's masters
			}
			titles := slices.Sorted(maps.Keys(c.Each))
			each := make([]string, len(titles))
			for i, title := range titles {
				each[i] = fmt.Sprintf("%s %.3f", title, c.Each[title])
			}
			fmt.Fprintf(w, "    %s\n", strings.Join(each, "; "))
		}
	}
}

// PrintComparison writes the summaries side by side.
func PrintComparison(w io.Writer, sums []Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name string, f func(Summary) string) {
		fmt.Fprintf(tw, "%s\t", name)
		for _, s := range sums {
			fmt.Fprintf(tw, "%s\t", f(s))
		}
		fmt.Fprintln(tw)
	}
	row("", func(s Summary) string { return s.Label })
	row("runs correct", func(s Summary) string { return fmt.Sprintf("%d/%d", s.CorrectRuns, s.Runs) })
	row("runs oversold / undersold", func(s Summary) string { return fmt.Sprintf("%d / %d", s.OversoldRuns, s.UndersoldRuns) })
	row("p99 ms (min/med/max)", func(s Summary) string {
		return fmt.Sprintf("%.1f / %.1f / %.1f", s.P99Ms.Min, s.P99Ms.Median, s.P99Ms.Max)
	})
	row("answered in ms (median)", func(s Summary) string { return fmt.Sprintf("%.0f", s.AnsweredInMs.Median) })
	row("throughput req/s (median)", func(s Summary) string { return fmt.Sprintf("%.0f", s.Throughput.Median) })
	row("last order durable ms (median)", func(s Summary) string { return fmt.Sprintf("%.0f", s.DurableAfter.Median) })
	row("peak DB conns in use / pool", func(s Summary) string { return fmt.Sprintf("%d / %d", s.PeakDBConns, s.PoolSize) })
	if len(sums) == 2 && sums[1].Throughput.Median > 0 {
		row("throughput ratio", func(s Summary) string {
			return fmt.Sprintf("%.1fx", s.Throughput.Median/sums[1].Throughput.Median)
		})
	}
	_ = tw.Flush()
}

// WriteJSON writes v, indented, to path.
func WriteJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o644)
}

// WriteSVG draws latency over time for each report (one colour each): every request as a dot
// (at most 4,000 per series) at the time its answer arrived, and the p99 of the answers of each
// 100 ms window as a line. Answer time, not send time: a burst sends everything at once, and
// what shows is how its answers spread out.
func WriteSVG(path string, reports []Report) error {
	const width, height, left, bottom, top, right = 960.0, 480.0, 60.0, 40.0, 30.0, 20.0
	maxX, maxY := 1.0, 1.0
	for _, r := range reports {
		for _, p := range r.Series {
			maxX = math.Max(maxX, p.AtMs+p.LatencyMs)
			maxY = math.Max(maxY, p.LatencyMs)
		}
	}
	maxY = niceCeil(maxY)
	x := func(v float64) float64 { return left + (width-left-right)*v/maxX }
	y := func(v float64) float64 { return height - bottom - (height-bottom-top)*v/maxY }
	colours := []string{"#0a66ff", "#d9480f", "#2b8a3e", "#862e9c"}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`)
	for i := 0; i <= 5; i++ {
		v := maxY * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end">%.0f</text>`,
			left, width-right, y(v), y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">answer arrived (ms since the first request, 0 – %.0f)</text>`, (width+left)/2, height-8, maxX)
	fmt.Fprintf(&b, `<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle">latency (ms)</text>`, height/2, height/2)
	for i, r := range reports {
		c := colours[i%len(colours)]
		step := max(1, len(r.Series)/4000)
		for j := 0; j < len(r.Series); j += step {
			p := r.Series[j]
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.2" fill="%s" fill-opacity="0.35"/>`, x(p.AtMs+p.LatencyMs), y(p.LatencyMs), c)
		}
		var pts []string
		for _, w := range windows(r.Series, 100) {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(w[0]), y(w[1])))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`, strings.Join(pts, " "), c)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s %s: p99 %.1f ms (line: p99 per 100 ms)</text>`,
			left+10, top+14*float64(i+1), c, r.Label, r.Mode, r.Latency.P99)
	}
	b.WriteString(`</svg>`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// windows returns (window start, p99 latency) per window of the given width in ms of answer time.
func windows(series []Point, widthMs float64) [][2]float64 {
	buckets := map[int][]float64{}
	for _, p := range series {
		k := int((p.AtMs + p.LatencyMs) / widthMs)
		buckets[k] = append(buckets[k], p.LatencyMs)
	}
	keys := make([]int, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	out := make([][2]float64, 0, len(keys))
	for _, k := range keys {
		v := buckets[k]
		sort.Float64s(v)
		out = append(out, [2]float64{float64(k) * widthMs, v[min(len(v)-1, int(float64(len(v))*0.99))]})
	}
	return out
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
