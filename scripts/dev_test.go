// Package scripts_test checks the shell functions of the scripts in this folder, sourced into bash.
package scripts_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// devSh runs shell code with the functions of dev.sh defined and returns its stdout and stderr.
func devSh(t *testing.T, code string) (string, string, error) {
	t.Helper()
	// Bounded: a dev.sh that ran the system when sourced would never return.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "source ./dev.sh && "+code)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), stderr.String(), err
}

func TestDevBannerURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":                "http://localhost:8080",
		":8080":           "http://localhost:8080",
		"0.0.0.0:9000":    "http://localhost:9000",
		"[::]:9000":       "http://localhost:9000",
		"127.0.0.1:18900": "http://127.0.0.1:18900",
		"localhost:8080":  "http://localhost:8080",
		"[::1]:9000":      "http://[::1]:9000",
	} {
		got, stderr, err := devSh(t, fmt.Sprintf("http_url %q", addr))
		if err != nil || got != want {
			t.Errorf("http_url %q = %q (%v %s), want %q", addr, got, err, stderr, want)
		}
	}
}

func TestDevCreatesTheDatabaseOfDatabaseURL(t *testing.T) {
	if _, err := exec.LookPath("psql"); err != nil {
		t.Skip("psql is not installed")
	}
	db := fmt.Sprintf("devsh_test_%d", time.Now().UnixNano())
	url := "postgres://postgres@127.0.0.1:5432/" + db + "?sslmode=disable"
	t.Cleanup(func() {
		_ = exec.Command("psql", url[:strings.LastIndex(url, "/")]+"/postgres", "-qc", "DROP DATABASE IF EXISTS "+db).Run()
	})

	_, stderr, err := devSh(t, fmt.Sprintf("ensure_database %q && ensure_database %q && psql %q -tAc 'SELECT 1'", url, url, url))
	if err != nil {
		t.Fatalf("ensure_database %s: %v\n%s", url, err, stderr)
	}
	if strings.Count(stderr, "creating database "+db) != 1 {
		t.Errorf("ensure_database twice said %q, want \"creating database %s\" once", stderr, db)
	}

	_, stderr, err = devSh(t, "ensure_database 'postgres://app@db.example:5432/shop?sslmode=require'")
	if err != nil || !strings.Contains(stderr, "not creating database shop") {
		t.Errorf("ensure_database of a remote server = %v %q, want it to say it creates nothing", err, stderr)
	}
}
