package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryVariable: the README's configuration table names every variable Config reads.
func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Vars() {
		if !strings.Contains(string(readme), "| `"+v.Name+"`") && !strings.Contains(string(readme), "/ `"+v.Name+"`") {
			t.Errorf("README.md does not list %s (%s)", v.Name, v.Help)
		}
	}
}
