package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// catalogue is a file of mutants of one package.
type catalogue struct {
	// Package is the package mutated, as go test names it (./internal/planner).
	Package string `json:"package"`
	// Cover lists the package's files every function of which must be
	// changed by at least one mutant.
	Cover []string `json:"cover"`
	// Last names slow tests that run only once the others pass, so that
	// most mutants are killed in a fraction of a second.
	Last    []string `json:"last,omitempty"`
	Mutants []mutant `json:"mutants"`
	// tests, when set, are the only tests run (-tests).
	tests string
}

// mutant is one deliberate bug: the lines From of File (compared without
// their indentation) replaced by To.
type mutant struct {
	ID   string `json:"id"`
	File string `json:"file"`
	// What says what the bug does, for the score table.
	What string `json:"what"`
	From string `json:"from"`
	To   string `json:"to"`
	// Equivalent, when set, says why no test can tell the mutant from the
	// code: it is expected to survive.
	Equivalent string `json:"equivalent,omitempty"`
}

func loadCatalogue(path string) (*catalogue, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c catalogue
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if c.Package == "" || len(c.Mutants) == 0 {
		return nil, fmt.Errorf("%s: a package and mutants are needed", path)
	}
	seen := map[string]bool{}
	for _, m := range c.Mutants {
		switch {
		case m.ID == "" || m.File == "" || m.What == "" || strings.TrimSpace(m.From) == "":
			return nil, fmt.Errorf("%s: mutant %q needs an id, a file, what it does and the lines it changes", path, m.ID)
		case seen[m.ID]:
			return nil, fmt.Errorf("%s: two mutants are called %s", path, m.ID)
		case lines(m.From) == nil || slices.Equal(lines(m.From), lines(m.To)):
			return nil, fmt.Errorf("%s: mutant %s changes nothing", path, m.ID)
		}
		seen[m.ID] = true
	}
	return &c, nil
}

// lines splits a block into lines without their indentation.
func lines(block string) []string {
	block = strings.TrimRight(block, "\n")
	if strings.TrimSpace(block) == "" {
		return nil
	}
	var out []string
	for _, l := range strings.Split(block, "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// apply returns src with the mutant's lines replaced, and the 1-based line
// where the change starts. The lines must occur exactly once.
func (m mutant) apply(src string) (string, int, error) {
	file := strings.Split(src, "\n")
	from := lines(m.From)
	var at []int
	for i := 0; i+len(from) <= len(file); i++ {
		match := true
		for j, want := range from {
			if strings.TrimSpace(file[i+j]) != want {
				match = false
				break
			}
		}
		if match {
			at = append(at, i)
		}
	}
	if len(at) != 1 {
		return "", 0, fmt.Errorf("mutant %s: its lines occur %d times in %s, not once: update the catalogue", m.ID, len(at), m.File)
	}
	i := at[0]
	indent := file[i][:len(file[i])-len(strings.TrimLeft(file[i], " \t"))]
	var to []string
	if strings.TrimSpace(m.To) != "" {
		for _, l := range strings.Split(strings.TrimRight(m.To, "\n"), "\n") {
			to = append(to, indent+l)
		}
	}
	out := slices.Concat(file[:i], to, file[i+len(from):])
	return strings.Join(out, "\n"), i + 1, nil
}

// funcs maps each function of a Go file to its line range.
type span struct {
	name        string
	first, last int
}

func funcs(path string) ([]span, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []span
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		name := fd.Name.Name
		if fd.Recv != nil && len(fd.Recv.List) == 1 {
			name = receiver(fd.Recv.List[0].Type) + "." + name
		}
		out = append(out, span{name: name, first: fset.Position(fd.Pos()).Line, last: fset.Position(fd.End()).Line})
	}
	return out, nil
}

func receiver(e ast.Expr) string {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}

// uncovered lists the functions of the catalogue's Cover files that no
// mutant changes; dir is the package's folder.
func (c *catalogue) uncovered(dir string) ([]string, error) {
	hit := map[string]bool{}
	var out []string
	for _, name := range c.Cover {
		path := filepath.Join(dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		spans, err := funcs(path)
		if err != nil {
			return nil, err
		}
		for _, m := range c.Mutants {
			if m.File != name {
				continue
			}
			_, line, err := m.apply(string(src))
			if err != nil {
				return nil, err
			}
			for _, s := range spans {
				if s.first <= line && line <= s.last {
					hit[name+" "+s.name] = true
				}
			}
		}
		for _, s := range spans {
			if !hit[name+" "+s.name] {
				out = append(out, name+" "+s.name)
			}
		}
	}
	return out, nil
}
