package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenerateSkipsAnUnchangedTree: the committed record matches the tree, so the test command
// does not build the generators; a changed input runs them again.
func TestGenerateSkipsAnUnchangedTree(t *testing.T) {
	out, err := exec.Command("./generate.sh", "--if-changed").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "not built") {
		t.Fatalf("generate.sh --if-changed on the committed tree = %v %q, want it to skip the generators (run ./scripts/generate.sh and commit internal/adapters/generated.sha256)", err, out)
	}

	// A copy of the generators' inputs, a spec edited, and a `go` that only says it was called.
	root := t.TempDir()
	for _, dir := range []string{"scripts", "openapi", "db", "tools", "internal/adapters/http/api", "internal/adapters/postgres/sqlcdb", "bin"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cp := exec.Command("bash", "-c", `cd .. && cp scripts/generate.sh "$0/scripts/" && cp -r openapi sqlc.yaml db "$0/" &&
		cp tools/go.mod tools/go.sum "$0/tools/" && cp internal/adapters/generated.sha256 "$0/internal/adapters/" &&
		cp internal/adapters/http/api/* "$0/internal/adapters/http/api/" &&
		cp internal/adapters/postgres/doc.go "$0/internal/adapters/postgres/" &&
		cp internal/adapters/postgres/sqlcdb/* "$0/internal/adapters/postgres/sqlcdb/"`, root)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copy: %v %s", err, out)
	}
	fakeGo := filepath.Join(root, "bin", "go")
	if err := os.WriteFile(fakeGo, []byte("#!/bin/sh\necho \"go $*\" >&2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		cmd := exec.Command(filepath.Join(root, "scripts", "generate.sh"), "--if-changed")
		cmd.Env = append(os.Environ(), "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("generate.sh --if-changed: %v %s", err, out)
		}
		return string(out)
	}
	if out := run(); strings.Contains(out, "go generate") {
		t.Fatalf("the copy, unchanged, ran the generators: %s", out)
	}
	f, err := os.OpenFile(filepath.Join(root, "openapi", "flashsale.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("# edited\n")
	_ = f.Close()
	if out := run(); !strings.Contains(out, "go generate ./...") {
		t.Fatalf("an edited spec did not run the generators: %s", out)
	}
}
