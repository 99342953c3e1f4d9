package files

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pullsecrets/pullsecrets/internal/manifests"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
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

// sparse makes a file of size bytes without writing them.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	mustWrite(t, path, "")
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func TestReadRefusesAFileOverTheLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "a.yaml"), "a")
	big := filepath.Join(dir, "big.yaml")
	sparse(t, big, readlimit.MaxFileBytes+1)
	got, errs := Read([]string{dir})
	if len(got) != 1 || got[0].Path != filepath.Join(dir, "a.yaml") {
		t.Errorf("read %v, want a.yaml only", got)
	}
	want := manifests.Finding{File: big, Message: "not read: it is 8.1 MiB, over the 8 MiB limit for one file"}
	if len(errs) != 1 || errs[0] != want {
		t.Errorf("errors %v, want %v", errs, want)
	}
}

func TestReadRefusesARunOverTheTotal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range readlimit.MaxTotalBytes/readlimit.MaxFileBytes + 1 {
		sparse(t, filepath.Join(dir, fmt.Sprintf("f%d.yaml", i)), readlimit.MaxFileBytes)
	}
	got, errs := Read([]string{dir})
	if len(got) != 0 {
		t.Errorf("read %d files of a run over the total", len(got))
	}
	want := "not read: the 9 files come to 72 MiB, more than 64 MiB, the limit for all the files of one command; name fewer files or folders"
	if len(errs) != 1 || errs[0].File != dir || errs[0].Message != want {
		t.Errorf("errors %v, want one for %s: %s", errs, dir, want)
	}
}

func TestReadStopsAStreamAtTheLimit(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("needs /dev/zero")
	}
	_, errs := Read([]string{"/dev/zero"})
	if len(errs) != 1 || errs[0].Message != "not read: it holds more than the 8 MiB limit for one file" {
		t.Errorf("errors %v, want /dev/zero refused at the limit", errs)
	}
}

// TestWriteAllIsAllOrNothing fails one change of three in each way it can
// fail before anything is in place: every file keeps its old bytes and no
// temporary file is left.
func TestWriteAllIsAllOrNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, dir string) // makes the last change fail
	}{
		{name: "a created file appeared meanwhile", setup: func(t *testing.T, dir string) {
			mustWrite(t, filepath.Join(dir, "new.yaml"), "someone else's")
		}},
		{name: "an edited file is gone", setup: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "b.yaml")); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a created file's folder is gone", setup: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "sub")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			mustWrite(t, filepath.Join(dir, "a.yaml"), "old a")
			mustWrite(t, filepath.Join(dir, "b.yaml"), "old b")
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			changes := []manifests.Change{
				{Path: filepath.Join(dir, "a.yaml"), After: []byte("new a")},
				{Path: filepath.Join(dir, "b.yaml"), After: []byte("new b")},
				{Path: filepath.Join(dir, "new.yaml"), After: []byte("new"), Created: true},
				{Path: filepath.Join(dir, "sub", "new.yaml"), After: []byte("new"), Created: true},
			}
			tc.setup(t, dir)
			before := snapshot(t, dir)
			written, err := WriteAll(changes)
			if err == nil || len(written) != 0 || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("WriteAll wrote %v, error %v; want nothing written and an error saying so", written, err)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("files changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "a.yaml"), "old a")
	written, err := WriteAll([]manifests.Change{
		{Path: filepath.Join(dir, "a.yaml"), After: []byte("new a")},
		{Path: filepath.Join(dir, "new.yaml"), After: []byte("new"), Created: true},
	})
	if err != nil || len(written) != 2 {
		t.Fatalf("WriteAll: %v, %v", written, err)
	}
	if got := snapshot(t, dir); !maps.Equal(got, map[string]string{"a.yaml": "new a", "new.yaml": "new"}) {
		t.Errorf("files after WriteAll: %v", got)
	}
}

// snapshot maps every file under dir to its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
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

// TestReadInputsFollowsKustomizations: a folder with a kustomization is
// read as kustomize reads it: its resources, folders as kustomizations in
// turn, the outer namespace winning; the kustomization file itself is no
// manifest; files it does not list are not read; a file named on its own
// still belongs to the kustomization that lists it.
func TestReadInputsFollowsKustomizations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "overlay", "kustomization.yaml"), "namespace: prod\nresources:\n- ../base\n- extra.yaml\n")
	mustWrite(t, filepath.Join(dir, "overlay", "extra.yaml"), "extra")
	mustWrite(t, filepath.Join(dir, "overlay", "patch.yaml"), "not listed")
	mustWrite(t, filepath.Join(dir, "base", "kustomization.yaml"), "namespace: base\nresources:\n- app.yaml\n")
	mustWrite(t, filepath.Join(dir, "base", "app.yaml"), "app")
	res := ReadInputs([]Input{{Path: filepath.Join(dir, "overlay")}}, nil)
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	got := map[string]string{}
	for _, f := range res.Files {
		rel, _ := filepath.Rel(dir, f.Path)
		k, _ := filepath.Rel(dir, f.Kustomization)
		got[rel] = f.Namespace + " " + k
	}
	want := map[string]string{
		filepath.Join("base", "app.yaml"):      "prod " + filepath.Join("base", "kustomization.yaml"),
		filepath.Join("overlay", "extra.yaml"): "prod " + filepath.Join("overlay", "kustomization.yaml"),
	}
	if !maps.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	if len(res.Kustomizations) != 2 {
		t.Errorf("kustomizations %d, want 2", len(res.Kustomizations))
	}

	alone := ReadInputs([]Input{{Path: filepath.Join(dir, "base", "app.yaml")}}, nil)
	if len(alone.Files) != 1 || alone.Files[0].Kustomization != filepath.Join(dir, "base", "kustomization.yaml") || alone.Files[0].Namespace != "base" {
		t.Errorf("a file named on its own: %+v", alone.Files)
	}

	mustWrite(t, filepath.Join(dir, "bad", "kustomization.yaml"), "resources:\n- gone.yaml\nnotAField: x\n")
	bad := ReadInputs([]Input{{Path: filepath.Join(dir, "bad")}}, nil)
	if len(bad.Errors) != 1 || !strings.Contains(bad.Errors[0].Message, "not a valid kustomization") {
		t.Errorf("errors %v, want one for the unknown field", bad.Errors)
	}

	stdin := ReadInputs([]Input{{Path: Stdin}}, strings.NewReader("kind: Pod\n"))
	if len(stdin.Files) != 1 || stdin.Files[0].Path != StdinName || string(stdin.Files[0].Data) != "kind: Pod\n" {
		t.Errorf("stdin: %+v", stdin.Files)
	}
}
