package files

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/manifests"
)

func TestReadWalksFoldersAndReportsBadPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "a.yaml"), "a")
	mustWrite(t, filepath.Join(dir, "sub", "b.json"), "b")
	mustWrite(t, filepath.Join(dir, "sub", "notes.txt"), "skipped")
	mustWrite(t, filepath.Join(dir, ".git", "c.yaml"), "hidden")
	got, errs := Read([]string{dir, filepath.Join(dir, "a.yaml"), filepath.Join(dir, "missing.yaml")})
	var paths []string
	for _, f := range got {
		rel, _ := filepath.Rel(dir, f.Path)
		paths = append(paths, rel)
	}
	if want := []string{"a.yaml", filepath.Join("sub", "b.json")}; !equal(paths, want) {
		t.Errorf("read %v, want %v", paths, want)
	}
	if len(errs) != 1 || errs[0].File != filepath.Join(dir, "missing.yaml") {
		t.Errorf("errors %v, want one for missing.yaml", errs)
	}
}

func TestWriteReplacesAtomicallyAndKeepsModeAndLinks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.yaml")
	mustWrite(t, real, "old")
	if err := os.Chmod(real, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink("real.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := Write(manifests.Change{Path: link, After: []byte("new"), Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("target holds %q, want new", b)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the symlink was replaced by a file")
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteNeverCreatesOverAnExistingFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "serviceaccount-default.yaml")
	mustWrite(t, p, "someone else's")
	if err := Write(manifests.Change{Path: p, After: []byte("ours"), Created: true}); err == nil {
		t.Fatal("created over an existing file")
	}
	if b, _ := os.ReadFile(p); string(b) != "someone else's" {
		t.Errorf("existing file changed to %q", b)
	}
}

func TestWriteFailureLeavesTheFileWhole(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || os.Geteuid() == 0 {
		t.Skip("needs a folder the test cannot write to (root can write anywhere)")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "a.yaml")
	mustWrite(t, p, "old")
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	if err := Write(manifests.Change{Path: p, After: []byte("new")}); err == nil {
		t.Fatal("write into a read-only folder succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("file holds %q after a failed write", b)
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
