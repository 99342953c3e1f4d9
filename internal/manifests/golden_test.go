package manifests

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden runs each testdata/<case>: the files under in/ go through the
// command named in its args file (migrate when there is none); want/ holds
// every file afterwards (edited, untouched and created), report.txt the
// notes, refusals and errors. A second run over want/ must change nothing.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		if !tc.IsDir() || tc.Name() == "scan" {
			continue
		}
		t.Run(tc.Name(), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", tc.Name())
			args := []string{"migrate"}
			if b, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				args = strings.Fields(string(b))
			}
			in := readTree(t, filepath.Join(dir, "in"))
			res := run(t, in, args)
			out := applyChanges(in, res)

			wantDir := filepath.Join(dir, "want")
			report := renderReport(res)
			if *update {
				writeTree(t, wantDir, out)
				if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(report), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(readTree(t, wantDir), out); diff != "" {
				t.Errorf("files differ from %s (-want +got):\n%s", wantDir, diff)
			}
			wantReport, err := os.ReadFile(filepath.Join(dir, "report.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(wantReport), report); diff != "" {
				t.Errorf("report differs (-want +got):\n%s", diff)
			}
			// A second run finds nothing to do.
			again := run(t, out, args)
			if len(again.Changes) != 0 {
				for _, c := range again.Changes {
					t.Errorf("second run changes %s:\n%s", c.Path, Diff(c))
				}
			}
		})
	}
}

func run(t *testing.T, files map[string]string, args []string) *Result {
	t.Helper()
	var in []File
	for _, p := range sortedKeys(files) {
		in = append(in, File{Path: p, Data: []byte(files[p]), Mode: 0o644})
	}
	set, errs := Load(in, Options{})
	switch args[0] {
	case "migrate":
		return Migrate(set, errs, MigrateOptions{Exists: func(p string) bool { _, ok := files[p]; return ok }})
	case "rename":
		return Rename(set, errs, args[1], args[2])
	}
	t.Fatalf("unknown command %q", args[0])
	return nil
}

func applyChanges(in map[string]string, res *Result) map[string]string {
	out := map[string]string{}
	for p, d := range in {
		out[p] = d
	}
	for _, c := range res.Changes {
		out[c.Path] = string(c.After)
	}
	return out
}

func renderReport(res *Result) string {
	var b strings.Builder
	for _, c := range res.Changes {
		verb := "edit"
		if c.Created {
			verb = "create"
		}
		b.WriteString(verb + ": " + c.Path + "\n")
	}
	for _, f := range res.Notes {
		b.WriteString("note: " + f.String() + "\n")
	}
	for _, f := range res.Refused {
		b.WriteString("refused: " + f.String() + "\n")
	}
	for _, f := range res.Errors {
		b.WriteString("error: " + f.String() + "\n")
	}
	return b.String()
}

func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	for p, d := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
