package loadtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPUUse is the CPU time (user and system) processes of one name spent during a run.
type CPUUse struct {
	Process   string  `json:"process"`
	Processes int     `json:"processes"`
	Seconds   float64 `json:"seconds"`
	// PerThousand is Seconds per 1,000 requests of the run.
	PerThousand float64 `json:"perThousandRequests"`
	// BusiestPerThousand is the share of the busiest of them (one Redis Cluster master, say),
	// per 1,000 requests.
	BusiestPerThousand float64 `json:"busiestPerThousandRequests"`
	// Each is every process's share per 1,000 requests, by its title (a redis-server's is its
	// address: "redis-server 127.0.0.1:7000 [cluster]"), when there are several.
	Each map[string]float64 `json:"each,omitempty"`
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on Linux.
const clockTicks = 100

// procTime is one process's CPU time, in seconds, and its title (its command line).
type procTime struct {
	name    string
	seconds float64
	title   string
}

// cpuTimes reads, from /proc, the CPU time of every process named one of names (its comm), but
// this one: by pid. Empty (and nothing reported) where /proc is not.
func cpuTimes(names []string) map[int]procTime {
	if len(names) == 0 {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	out := map[int]procTime{}
	self := os.Getpid()
	for _, path := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile(path) //nolint:gosec // G304: /proc, read only
		if err != nil {
			continue // ended meanwhile
		}
		name, seconds, ok := parseStat(raw)
		if ok && want[name] {
			cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "cmdline")) //nolint:gosec // G304: /proc, read only
			title := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
			out[pid] = procTime{name: name, seconds: seconds, title: title + " (" + strconv.Itoa(pid) + ")"}
		}
	}
	return out
}

// parseStat reads a /proc/<pid>/stat line: the comm in parentheses (it may hold spaces and
// parentheses itself), then utime and stime, the 14th and 15th fields.
func parseStat(raw []byte) (name string, seconds float64, ok bool) {
	open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	fields := bytes.Fields(raw[end+1:]) // from the 3rd field (state)
	if len(fields) < 13 {
		return "", 0, false
	}
	utime, err1 := strconv.ParseInt(string(fields[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(fields[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, false
	}
	return string(raw[open+1 : end]), float64(utime+stime) / clockTicks, true
}

// cpuUse is what each name's processes spent between two readings, per 1,000 requests. A
// process that started during the run counts from zero; one that ended is left out.
func cpuUse(names []string, before, after map[int]procTime, requests int) []CPUUse {
	if len(names) == 0 {
		return nil
	}
	use := make([]CPUUse, len(names))
	index := map[string]int{}
	for i, n := range names {
		use[i].Process = n
		index[n] = i
	}
	busiest := make([]float64, len(names))
	for pid, a := range after {
		i := index[a.name]
		u, spent := &use[i], a.seconds-before[pid].seconds
		u.Processes++
		u.Seconds += spent
		busiest[i] = max(busiest[i], spent)
		if requests > 0 {
			if u.Each == nil {
				u.Each = map[string]float64{}
			}
			u.Each[a.title] = spent * 1000 / float64(requests)
		}
	}
	for i := range use {
		if requests > 0 {
			use[i].PerThousand = use[i].Seconds * 1000 / float64(requests)
			use[i].BusiestPerThousand = busiest[i] * 1000 / float64(requests)
		}
		if use[i].Processes < 2 {
			use[i].Each = nil
		}
	}
	return use
}
