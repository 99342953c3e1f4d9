package manifests

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzMigrate checks that Migrate never panics, that everything it writes
// parses, and that running it on its own output changes nothing more.
func FuzzMigrate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/in/*")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {imagePullSecrets: [{name: a}], containers: []}\n"))
	// Hostile files: Load must refuse them in time linear in their size.
	f.Add([]byte(mergeBomb(40, 8)))
	f.Add([]byte(aliasBomb(10, 10)))
	f.Add([]byte(listBomb(12, 6)))
	f.Fuzz(func(t *testing.T, data []byte) {
		files := map[string]string{"in.yaml": string(data)}
		res := migrateFiles(files)
		out := applyChanges(files, res)
		for _, c := range res.Changes {
			if _, errs := Load([]File{{Path: c.Path, Data: c.After}}, Options{}); len(errs) > 0 {
				t.Fatalf("%s does not load after migrate: %v\n%s", c.Path, errs, c.After)
			}
		}
		again := migrateFiles(out)
		for _, c := range again.Changes {
			t.Errorf("second run changes %s:\n%s", c.Path, Diff(c))
		}
	})
}

func migrateFiles(files map[string]string) *Result {
	var in []File
	for _, p := range sortedKeys(files) {
		in = append(in, File{Path: p, Data: []byte(files[p])})
	}
	set, errs := Load(in, Options{})
	return Migrate(set, errs, MigrateOptions{Exists: func(p string) bool { _, ok := files[p]; return ok }})
}
