package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWindowsGroupAnswersByArrival(t *testing.T) {
	// A burst: everything sent at 0, answered over 300 ms.
	series := []Point{{AtMs: 0, LatencyMs: 10}, {AtMs: 0, LatencyMs: 50}, {AtMs: 1, LatencyMs: 150}, {AtMs: 1, LatencyMs: 298}}
	got := windows(series, 100)
	want := [][2]float64{{0, 50}, {100, 150}, {200, 298}}
	if len(got) != len(want) {
		t.Fatalf("windows = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("windows = %v, want %v", got, want)
		}
	}
}

func TestWriteSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.svg")
	r := Report{Label: "redis", Mode: "burst", Series: []Point{{AtMs: 0, LatencyMs: 10}, {AtMs: 0, LatencyMs: 250}}}
	r.Latency.P99 = 250
	if err := WriteSVG(path, []Report{r}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svg := string(raw)
	for _, want := range []string{"<svg ", "</svg>", "<polyline ", "redis burst: p99 250.0 ms", "answer arrived"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	if n := strings.Count(svg, "<circle "); n != 2 {
		t.Errorf("%d dots, want one per request (2)", n)
	}
}
