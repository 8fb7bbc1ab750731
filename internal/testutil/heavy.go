package testutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Heavy marks t as a load test (thousands of concurrent requests): such tests take turns, across
// every test binary of a `go test ./...` run, through an exclusive lock on a file in the
// temporary directory. Two of them at once on a small machine starve each other and every
// other test of CPU; taking turns keeps them honest about correctness, which is what they check.
func Heavy(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "flashsale-heavy-tests.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testutil: heavy-test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		_ = f.Close()
		t.Fatalf("testutil: heavy-test lock: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	})
}
