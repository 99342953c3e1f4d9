package clitest

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is the -update flag of every command test that imports clitest.
var update = flag.Bool("update", false, "rewrite the golden files")

// Golden compares got with the golden file at path, or rewrites the file
// when the test runs with -update.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the output (run with -update to accept):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
