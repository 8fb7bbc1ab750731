package chaos

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func tableRows() []Row {
	clean := Row{Fault: "pg-terminate", Load: "100/s for 20s", Converged: 1900 * time.Millisecond, AfterLoad: 900 * time.Millisecond,
		Outcome: Outcome{Accepted: 245, Rows: 245, EventsMissing: map[string]int{}, EventsDuplicate: map[string]int{}}}
	broken := Row{Fault: "redis-restart", Load: "burst 5000 users, stock 500", Never: true,
		Outcome: Outcome{Accepted: 800, Rows: 500, Lost: 300, Oversold: 300, StockDrift: 12,
			EventsMissing:   map[string]int{"flashsale-analytics": 4},
			EventsDuplicate: map[string]int{"flashsale-email": 2}}}
	failed := Row{Fault: "broker-kill", Load: "100/s for 11s", Err: errors.New("flashsale broker: not listening")}
	return []Row{clean, broken, failed}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	PrintTable(&b, tableRows())
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want a header and 3 rows:\n%s", len(lines), b.String())
	}
	for i, want := range [][]string{
		{"fault", "accepted", "rows", "lost", "oversold", "converged", "result"},
		{"pg-terminate", "245", "0/0/0", "1.9 s", "0.9 s", "ok"},
		{"redis-restart", "800", "300", "+12", "0/4/0", "2/0/0", "never", "VIOLATED"},
		{"broker-kill", "ERROR"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
	// Aligned: every row's "result" column starts where the header's does.
	col := strings.Index(lines[0], "result")
	for _, l := range lines[1:] {
		if len(l) < col || strings.TrimSpace(l[col:]) == "" || l[col-1] != ' ' {
			t.Errorf("row %q is not aligned with the header's result column at %d", l, col)
		}
	}
}

func TestPrintMarkdown(t *testing.T) {
	var b bytes.Buffer
	PrintMarkdown(&b, tableRows())
	out := b.String()
	for _, want := range []string{
		"| fault | load | accepted |",
		"|---|---|",
		"| `pg-terminate` | 100/s for 20s | 245 | 245 | 0 | 0 | 0 | 0 | 0 | 0/0/0 | 0/0/0 | 1.9 s | 0.9 s | ok |",
		"| `redis-restart` | burst 5000 users, stock 500 | 800 | 500 | 300 | 300 | 0 | 0 | +12 | 0/4/0 | 2/0/0 | never | never | **VIOLATED** |",
		"| **ERROR** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestRowViolated(t *testing.T) {
	rows := tableRows()
	if rows[0].Violated() || !rows[1].Violated() || !rows[2].Violated() {
		t.Fatal("Violated(): only the clean, converged row is not a violation")
	}
	// Converging late is not a violation by itself; not converging is.
	late := rows[0]
	late.Never = true
	if !late.Violated() {
		t.Fatal("a row whose invariants never held is a violation")
	}
}

func TestSelectFaults(t *testing.T) {
	all, short := FaultNames()
	if len(all) != len(faults) || len(short) == 0 {
		t.Fatalf("FaultNames() = %v, %v", all, short)
	}
	got, err := selectFaults([]string{"api-kill", "pg-stop"})
	if err != nil || len(got) != 2 || got[0].name != "pg-stop" || got[1].name != "api-kill" {
		t.Fatalf("selectFaults: %v, %v (want the catalogue's order)", got, err)
	}
	if _, err := selectFaults([]string{"pg-stop", "disk-full"}); err == nil || !strings.Contains(err.Error(), "disk-full") {
		t.Fatalf("an unknown fault must be refused, got %v", err)
	}
	if got, _ := selectFaults(nil); len(got) != len(faults) {
		t.Fatalf("no selection runs every fault, got %d", len(got))
	}
}

func TestSizeAt(t *testing.T) {
	t0 := time.Now()
	samples := []aofSample{{t0, 100}, {t0.Add(time.Second), 250}, {t0.Add(2 * time.Second), 400}}
	for _, tt := range []struct {
		at   time.Duration
		want int64
	}{{-time.Second, 0}, {0, 100}, {1500 * time.Millisecond, 250}, {5 * time.Second, 400}} {
		if got := sizeAt(samples, t0.Add(tt.at)); got != tt.want {
			t.Errorf("sizeAt(+%s) = %d, want %d", tt.at, got, tt.want)
		}
	}
}
