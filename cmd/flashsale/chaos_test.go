package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/chaos"
)

func TestChaosListsEveryFault(t *testing.T) {
	out, err := run(t, "chaos", "--list")
	if err != nil {
		t.Fatal(err)
	}
	all, short := chaos.FaultNames()
	for _, name := range all {
		if !strings.Contains(out, name) {
			t.Errorf("--list lacks %s", name)
		}
	}
	if strings.Count(out, "[short]") != len(short) {
		t.Errorf("--list marks %d faults [short], want %d", strings.Count(out, "[short]"), len(short))
	}
	if help, _ := run(t, "--help"); !strings.Contains(help, "flashsale chaos") {
		t.Error("the root help does not list flashsale chaos")
	}
}

func TestShortKeepsWhatTheCallerSet(t *testing.T) {
	o := chaos.Defaults()
	o.Rate = 70 // given with --rate
	applyShort(func(flag string) bool { return flag == "rate" }, &o)
	s := chaos.ShortDefaults()
	if o.Rate != 70 || o.Lead != s.Lead || o.ConvergeTimeout != s.ConvergeTimeout || len(o.Faults) != len(s.Faults) {
		t.Fatalf("after --short --rate 70: rate %d lead %s converge %s faults %v", o.Rate, o.Lead, o.ConvergeTimeout, o.Faults)
	}
	if s.ConvergeTimeout > time.Minute {
		t.Errorf("the short subset waits up to %s per fault", s.ConvergeTimeout)
	}
}
