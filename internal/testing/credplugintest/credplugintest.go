// Package credplugintest builds credential provider plugins for tests: a
// fake one (fakeplugin) whose misbehaviour is chosen by its arguments, and
// the real ones pinned in hack/credproviders.
//
// The fake's -mode is one of: good (answers -username and a password new
// at every call, PREFIX-CALL-RANDOM), env-names (answers the sorted names,
// never the values, of its environment as the username), echo-token,
// empty (no auth),
// anonymous (empty username and password), no-cache-key-type, exit
// (-exit-code), signal (SIGKILLs itself), hang, hang-with-child (both
// sleep an hour; -child-pid-file), orphan (answers, leaves a child holding
// stdout), garbage, wrong-kind, unknown-field, wrong-type,
// secret-api-version, fail-with-password (prints -secret to stderr and
// stdout, exits 1), oversized-stdout and oversized-stderr (-size bytes of
// -secret). Whatever the mode, every run adds a byte to the -state file,
// when one is given, so that a test can count runs.
package credplugintest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FakeName is the fake plugin's file name in its bin directory.
const FakeName = "fake-credential-provider"

// ECRName is the real ECR plugin's file name.
const ECRName = "ecr-credential-provider"

// BuildFake builds the fake plugin into dir as FakeName.
func BuildFake(dir string) error {
	// go test puts its own toolchain first on PATH.
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, FakeName), "./internal/testing/credplugintest/fakeplugin")
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the fake credential provider plugin: %w\n%s", err, out)
	}
	return nil
}

// RealBinDir builds the real plugins with hack/build-credproviders.sh (a
// cache hit after the first time) and returns their bin directory. It
// skips the test, saying why, when they cannot be built.
func RealBinDir(t testing.TB) string {
	t.Helper()
	script := filepath.Join(ModuleRoot(), "hack", "build-credproviders.sh")
	cmd := exec.Command("bash", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Skipf("skipping: the real credential provider plugins cannot be built (%s: %v); its last output:\n%s",
			script, err, lastLines(stderr.String(), 10))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := lines[len(lines)-1]
	if _, err := os.Stat(filepath.Join(dir, ECRName)); err != nil {
		t.Skipf("skipping: %s printed %q, which holds no %s: %v", script, dir, ECRName, err)
	}
	return dir
}

// ModuleRoot is the repository root, found from this file's path.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
