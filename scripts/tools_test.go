package scripts_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNeedInstallsWhatIsMissingAndSaysSo: need installs the packages of missing commands only,
// through apt-get (a fake here), and names them.
func TestNeedInstallsWhatIsMissingAndSaysSo(t *testing.T) {
	bin := t.TempDir()
	for name, script := range map[string]string{
		"apt-get": "#!/bin/sh\necho \"apt-get $*\" >>\"$APT_LOG\"\n",
		"sudo":    "#!/bin/sh\nexec \"$@\"\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(t.TempDir(), "apt.log")
	cmd := exec.Command("bash", "-c", "source ./lib/tools.sh && need bash:bash no-such-compiler-cc:gcc,libc6-dev no-such-node:nodejs")
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "APT_LOG="+log)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("need: %v %s", err, out)
	}
	if !strings.Contains(string(out), "no-such-compiler-cc no-such-node not found: installing gcc libc6-dev nodejs") {
		t.Errorf("need said %q, want the missing commands and the packages it installs", out)
	}
	apt, _ := os.ReadFile(log)
	if !strings.Contains(string(apt), "apt-get install -y -qq gcc libc6-dev nodejs\n") || strings.Contains(string(apt), " bash") {
		t.Errorf("apt-get was called as %q, want gcc libc6-dev nodejs installed (and not bash)", apt)
	}
}
