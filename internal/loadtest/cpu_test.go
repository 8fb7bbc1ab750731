package loadtest

import (
	"reflect"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A comm may hold spaces and parentheses; utime and stime are the 14th and 15th fields.
	line := []byte("4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 120 0 0 0 250 75 0 0 20 0 8 0 100 0 0\n")
	name, seconds, ok := parseStat(line)
	if !ok || name != "my (odd) name" || seconds != 3.25 {
		t.Fatalf("parseStat = %q, %v, %v; want \"my (odd) name\", 3.25, true", name, seconds, ok)
	}
	if _, _, ok := parseStat([]byte("4242 (cut")); ok {
		t.Fatal("a cut line parsed")
	}
}

func TestCPUUsePerThousandRequests(t *testing.T) {
	before := map[int]procTime{1: {"redis-server", 10, "r1"}, 2: {"postgres", 1, "p2"}, 3: {"postgres", 2, "p3"}}
	after := map[int]procTime{1: {"redis-server", 12, "r1"}, 2: {"postgres", 1.5, "p2"}, 4: {"postgres", 0.5, "p4"}} // 3 ended, 4 started
	got := cpuUse([]string{"redis-server", "postgres", "flashsale"}, before, after, 4000)
	// The busiest postgres: pid 4, 0.5 s (pid 2 spent 0.5 s too); each of the two is listed.
	want := []CPUUse{{"redis-server", 1, 2, 0.5, 0.5, nil}, {"postgres", 2, 1, 0.25, 0.125, map[string]float64{"p2": 0.125, "p4": 0.125}},
		{"flashsale", 0, 0, 0, 0, nil}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cpuUse = %+v, want %+v", got, want)
	}
}
