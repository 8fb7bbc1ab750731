package loadtest

import "testing"

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
	before := map[int]procTime{1: {"redis-server", 10}, 2: {"postgres", 1}, 3: {"postgres", 2}}
	after := map[int]procTime{1: {"redis-server", 12}, 2: {"postgres", 1.5}, 4: {"postgres", 0.5}} // 3 ended, 4 started
	got := cpuUse([]string{"redis-server", "postgres", "flashsale"}, before, after, 4000)
	// The busiest postgres: pid 4, 0.5 s (pid 2 spent 0.5 s too).
	want := []CPUUse{{"redis-server", 1, 2, 0.5, 0.5}, {"postgres", 2, 1, 0.25, 0.125}, {"flashsale", 0, 0, 0, 0}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cpuUse[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}
