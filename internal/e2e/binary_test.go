package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binary is the flashsale command built for the tests that run it as a process of its own.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// flashsaleBinary builds cmd/flashsale once per test run and returns its path.
func flashsaleBinary(t *testing.T) string {
	t.Helper()
	binary.once.Do(func() {
		binary.dir, binary.err = os.MkdirTemp("", "flashsale-e2e-")
		if binary.err != nil {
			return
		}
		binary.path = filepath.Join(binary.dir, "flashsale")
		binary.out, binary.err = exec.Command("go", "build", "-o", binary.path, "github.com/flashsale/flashsale/cmd/flashsale").CombinedOutput()
	})
	if binary.err != nil {
		t.Fatalf("build: %v\n%s", binary.err, binary.out)
	}
	return binary.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}
