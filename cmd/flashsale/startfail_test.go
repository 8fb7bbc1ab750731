package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testutil"
)

// TestMain lets a test run this binary's main as a child process: FLASHSALE_TEST_MAIN holds the
// arguments (space-separated), so its stderr and exit code can be checked.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("FLASHSALE_TEST_MAIN"); ok {
		os.Args = append([]string{"flashsale"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runMain runs `flashsale args` in a child process with env added and returns its stderr and
// exit code.
func runMain(t *testing.T, args string, env ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{"FLASHSALE_TEST_MAIN=" + args}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stderr.String(), 0
	case errors.As(err, &exit):
		return stderr.String(), exit.ExitCode()
	default:
		t.Fatalf("flashsale %s: %v", args, err)
		return "", -1
	}
}

// takenPort listens on a free port until the test ends and returns it.
func takenPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
}

// TestEveryRoleThatCannotStartPrintsWhyAndExits1: the cause reaches stderr once, prefixed
// "flashsale:", and the exit code is 1, for every role and each way a start fails.
func TestEveryRoleThatCannotStartPrintsWhyAndExits1(t *testing.T) {
	missingDB := "DATABASE_URL=postgres://postgres@127.0.0.1:5432/doesnotexist_startfail?sslmode=disable"
	port := takenPort(t)
	_, portNumber, _ := net.SplitHostPort(port)
	// Everything else works, on this test's own database, keys and queues.
	redis := testutil.NewRedis(t)
	common := []string{"DATABASE_URL=" + testutil.NewDatabase(t), "REDIS_URL=" + testutil.RedisURL(),
		"REDIS_PREFIX=" + redis.Prefix, "ORDER_QUEUE=" + redis.Queue, "SALE_EVENTS_QUEUE=" + redis.Queue + "-sales",
		"HTTP_ADDR=127.0.0.1:0", "KAFKA_EMBEDDED_PORT=0", "KAFKA_EMBEDDED_DIR=", "ADMIN_ADDR=", "LOG_LEVEL=warn",
		"MAIL_DIR=" + t.TempDir()}
	for _, tc := range []struct {
		name, args, cause string
		env               []string
	}{
		{"all, database missing", "all", `database "doesnotexist_startfail" does not exist`, []string{missingDB}},
		{"serve, database missing", "serve", `database "doesnotexist_startfail" does not exist`, []string{missingDB}},
		{"worker, database missing", "worker", `database "doesnotexist_startfail" does not exist`, []string{missingDB}},
		{"consumer, database missing", "consumer email", `database "doesnotexist_startfail" does not exist`, []string{missingDB}},
		{"migrate, database missing", "migrate", `database "doesnotexist_startfail" does not exist`, []string{missingDB}},
		{"serve, HTTP port taken", "serve", "address already in use", []string{"HTTP_ADDR=" + port}},
		{"all, Kafka port taken", "all", "address already in use", []string{"KAFKA_EMBEDDED_PORT=" + portNumber}},
		{"broker, Kafka port taken", "broker", "address already in use", []string{"KAFKA_EMBEDDED_PORT=" + portNumber}},
		{"all, Redis down", "all", "connection refused", []string{"REDIS_URL=redis://127.0.0.1:1/0"}},
		{"serve, Redis down", "serve", "connection refused", []string{"REDIS_URL=redis://127.0.0.1:1/0"}},
		{"worker, Redis down", "worker", "connection refused", []string{"REDIS_URL=redis://127.0.0.1:1/0"}},
		{"worker, ADMIN_ADDR taken", "worker", "address already in use", []string{"ADMIN_ADDR=" + port}},
		{"consumer, ADMIN_ADDR taken", "consumer analytics", "address already in use", []string{"ADMIN_ADDR=" + port}},
		// At any log level: the cause is printed by main, not by a logger.
		{"serve, database missing, LOG_LEVEL=error", "serve", `database "doesnotexist_startfail" does not exist`,
			[]string{missingDB, "LOG_LEVEL=error"}},
		{"worker, ADMIN_ADDR taken, LOG_LEVEL=error", "worker", "address already in use", []string{"ADMIN_ADDR=" + port, "LOG_LEVEL=error"}},
		{"all, Redis down, LOG_LEVEL=error", "all", "connection refused", []string{"REDIS_URL=redis://127.0.0.1:1/0", "LOG_LEVEL=error"}},
		{"serve, HTTP port taken, LOG_LEVEL=debug", "serve", "address already in use", []string{"HTTP_ADDR=" + port, "LOG_LEVEL=debug"}},
		{"worker, database missing, LOG_LEVEL=debug", "worker", `database "doesnotexist_startfail" does not exist`,
			[]string{missingDB, "LOG_LEVEL=debug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := runMain(t, tc.args, append(common, tc.env...)...)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			var causes, printed []string
			for line := range strings.Lines(stderr) {
				if strings.Contains(line, tc.cause) {
					causes = append(causes, line)
					if strings.HasPrefix(line, "flashsale: ") {
						printed = append(printed, line)
					}
				}
			}
			// At debug, fx's own log lines tell of the failure too: main's line must be there.
			debug := slices.Contains(tc.env, "LOG_LEVEL=debug")
			if len(printed) != 1 || !debug && len(causes) != 1 {
				t.Errorf("want %q once, on a line of its own starting \"flashsale: \"; stderr:\n%s", tc.cause, stderr)
			}
		})
	}
}
