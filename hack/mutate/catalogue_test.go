package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const source = `package p

func a(x int) bool {
	if x > 0 {
		return true
	}
	return false
}

func (t *T) b() int {
	return 1
}

func c() int {
	return 1
}
`

func TestApply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		from, to string
		want     string // the lines changed, "" for an error
		line     int
	}{
		{"one line, indentation ignored", "if x > 0 {", "if x >= 0 {", "\tif x >= 0 {", 4},
		{"several lines", "if x > 0 {\n  return true\n}", "return true", "\treturn true\n\treturn false", 4},
		{"lines removed", "return false", "", "\t}\n}", 7},
		{"lines not there", "if x < 0 {", "if x > 0 {", "", 0},
		{"lines there twice", "return 1", "return 2", "", 0},
		{"a partial line does not match", "x > 0", "x >= 0", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, line, err := mutant{ID: "m", File: "p.go", From: tt.from, To: tt.to}.apply(source)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("no error; got\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if line != tt.line || !strings.Contains(got, tt.want) {
				t.Fatalf("line %d (want %d):\n%s", line, tt.line, got)
			}
		})
	}
}

func TestLoadCatalogueRefusesBadMutants(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, yaml, err string }{
		{"fine", "package: ./p\nmutants:\n- {id: m, file: p.go, what: w, from: a, to: b}\n", ""},
		{"no package", "mutants:\n- {id: m, file: p.go, what: w, from: a, to: b}\n", "a package and mutants"},
		{"unknown field", "package: ./p\nmutants:\n- {id: m, file: p.go, what: w, from: a, to: b, form: c}\n", "unknown field"},
		{"no what", "package: ./p\nmutants:\n- {id: m, file: p.go, from: a, to: b}\n", "needs an id"},
		{"twice the same id", "package: ./p\nmutants:\n- {id: m, file: p.go, what: w, from: a, to: b}\n- {id: m, file: p.go, what: w, from: a, to: c}\n", "two mutants"},
		{"changes nothing", "package: ./p\nmutants:\n- {id: m, file: p.go, what: w, from: a, to: '  a'}\n", "changes nothing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := loadCatalogue(path)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one with %q", err, tt.err)
			}
		})
	}
}

func TestUncoveredNamesFunctionsWithoutMutants(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &catalogue{Cover: []string{"p.go"}, Mutants: []mutant{
		{ID: "m1", File: "p.go", From: "return false", To: "return true"},
		{ID: "m2", File: "p.go", From: "func (t *T) b() int {\nreturn 1", To: "func (t *T) b() int {\nreturn 2"},
	}}
	got, err := c.uncovered(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p.go c"}; !slices.Equal(got, want) {
		t.Fatalf("uncovered %v, want %v", got, want)
	}
}

func TestFirstFailure(t *testing.T) {
	t.Parallel()
	for out, want := range map[string]string{
		"=== RUN   TestA\n--- FAIL: TestA (0.00s)\n    --- FAIL: TestA/sub (0.00s)\n--- FAIL: TestB (0.00s)\n": "TestA",
		"panic: test timed out after 3m0s\n":       "(timed out)",
		"panic: runtime error: index out of range": "(panic)",
		"exit status 2": "(failed)",
	} {
		if got := firstFailure([]byte(out)); got != want {
			t.Errorf("firstFailure(%q) = %q, want %q", out, got, want)
		}
	}
}
