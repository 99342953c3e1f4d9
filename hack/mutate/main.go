// Command mutate runs the mutation tests of a package: each mutant of a
// catalogue (a deliberate bug, kept in the repository) is applied to a
// temporary copy of its file, given to the go command as an -overlay so
// that the tree is never touched, and the package's short tests must then
// fail (the catalogue's slow ones run only once the others pass). It
// prints a score table and fails when a mutant survives that the catalogue
// does not list as equivalent (with the reason), when a mutant listed as
// equivalent is killed, when a mutant no longer applies or builds, or when
// a function of the covered files has no mutant.
//
//	go run ./hack/mutate [-catalogue internal/planner/testdata/mutants.yaml] [-jobs N] [-run ID] [-tests REGEXP]
//
// -run tests one mutant; -tests runs only some tests, to see what they
// kill alone (survivors then fail the run).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	path := flag.String("catalogue", "internal/planner/testdata/mutants.yaml", "the mutants")
	jobs := flag.Int("jobs", runtime.NumCPU(), "mutants tested at once")
	only := flag.String("run", "", "test only the mutant with this id")
	timeout := flag.Duration("timeout", 3*time.Minute, "time limit of one mutant's tests")
	tests := flag.String("tests", "", "run only the tests matching this pattern (to measure what they kill alone)")
	flag.Parse()
	if err := mutate(*path, *only, *tests, *jobs, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(1)
	}
}

// result is what the tests made of one mutant.
type result struct {
	killed bool
	by     string // the first test that failed
	out    []byte
	took   time.Duration
	err    error // the mutant could not be tested
}

func mutate(path, only, tests string, jobs int, timeout time.Duration) error {
	c, err := loadCatalogue(path)
	if err != nil {
		return err
	}
	c.tests = tests
	dir := filepath.Clean(c.Package)
	missing, err := c.uncovered(dir)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("no mutant changes these functions; add some to %s: %s", path, strings.Join(missing, ", "))
	}
	mutants := c.Mutants
	if only != "" {
		mutants = nil
		for _, m := range c.Mutants {
			if m.ID == only {
				mutants = append(mutants, m)
			}
		}
		if mutants == nil {
			return fmt.Errorf("no mutant %s in %s", only, path)
		}
	}
	tmp, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	switch r := test(c, dir, mutant{ID: "none"}, filepath.Join(tmp, "none"), timeout); {
	case r.err != nil:
		return r.err
	case r.killed:
		return fmt.Errorf("the tests fail without any mutant:\n%s", r.out)
	}
	fmt.Printf("%d mutants of %s, %d at a time\n", len(mutants), c.Package, jobs)
	results := make([]result, len(mutants))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = test(c, dir, mutants[i], filepath.Join(tmp, mutants[i].ID), timeout)
			}
		}()
	}
	for i := range mutants {
		next <- i
	}
	close(next)
	wg.Wait()
	return report(mutants, results, time.Since(start))
}

// test applies one mutant (none when its lines are empty) in its own
// folder, builds the package's test binary with it and runs the tests: the
// catalogue's slow ones only once the others pass.
func test(c *catalogue, dir string, m mutant, work string, timeout time.Duration) result {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return result{err: err}
	}
	binary := filepath.Join(work, "pkg.test")
	build := []string{"test", "-c", "-vet=off", "-o", binary}
	if m.From != "" {
		overlay, err := writeOverlay(dir, m, work)
		if err != nil {
			return result{err: err}
		}
		build = append(build, "-overlay", overlay)
	}
	ctx := context.Background()
	if out, err := run(ctx, "", "go", append(build, c.Package)...); err != nil {
		return result{err: fmt.Errorf("mutant %s does not build: fix it in the catalogue:\n%s", m.ID, out)}
	}
	start := time.Now()
	flags := []string{"-test.short", "-test.count=1", "-test.failfast", "-test.timeout=" + timeout.String()}
	phases := [][]string{flags}
	switch {
	case c.tests != "":
		phases = [][]string{append(slices.Clone(flags), "-test.run="+c.tests)}
	case len(c.Last) > 0:
		last := "^(" + strings.Join(c.Last, "|") + ")$"
		phases = [][]string{append(slices.Clone(flags), "-test.skip="+last), append(slices.Clone(flags), "-test.run="+last)}
	}
	r := result{}
	for _, args := range phases {
		out, err := run(ctx, dir, binary, args...)
		if err != nil {
			r.killed, r.by, r.out = true, firstFailure(out), out
			break
		}
	}
	r.took = time.Since(start)
	return r
}

// writeOverlay writes the mutated file and the go command's overlay that
// puts it in place of the original.
func writeOverlay(dir string, m mutant, work string) (string, error) {
	target, err := filepath.Abs(filepath.Join(dir, m.File))
	if err != nil {
		return "", err
	}
	src, err := os.ReadFile(target)
	if err != nil {
		return "", err
	}
	mutated, _, err := m.apply(string(src))
	if err != nil {
		return "", err
	}
	copied := filepath.Join(work, m.File)
	overlay := filepath.Join(work, "overlay.json")
	raw, err := json.Marshal(map[string]map[string]string{"Replace": {target: copied}})
	if err != nil {
		return "", err
	}
	return overlay, errors.Join(os.WriteFile(copied, []byte(mutated), 0o644), os.WriteFile(overlay, raw, 0o644))
}

var failLine = regexp.MustCompile(`(?m)^--- FAIL: (\S+)`)

func firstFailure(out []byte) string {
	switch m := failLine.FindSubmatch(out); {
	case m != nil:
		return string(m[1])
	case bytes.Contains(out, []byte("test timed out")):
		return "(timed out)"
	case bytes.Contains(out, []byte("panic:")):
		return "(panic)"
	}
	return "(failed)"
}

func run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// report prints the score table and says whether the run passes.
func report(mutants []mutant, results []result, took time.Duration) error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MUTANT\tRESULT\tBY\tTIME\tWHAT")
	var killed, equivalent int
	var problems []string
	for i, m := range mutants {
		r := results[i]
		status := ""
		switch {
		case r.err != nil:
			status = "ERROR"
			problems = append(problems, r.err.Error())
		case r.killed && m.Equivalent != "":
			status = "KILLED, LISTED EQUIVALENT"
			problems = append(problems, fmt.Sprintf("mutant %s is listed as equivalent but %s kills it: remove the note", m.ID, r.by))
		case r.killed:
			status = "killed"
			killed++
		case m.Equivalent != "":
			status = "equivalent"
			equivalent++
		default:
			status = "SURVIVED"
			problems = append(problems, fmt.Sprintf("mutant %s (%s) survives: add a test that kills it, or say in the catalogue why it is equivalent", m.ID, m.What))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%s\n", m.ID, status, r.by, r.took.Seconds(), m.What)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range mutants {
		if m.Equivalent != "" {
			fmt.Printf("\n%s is equivalent: %s", m.ID, m.Equivalent)
		}
	}
	fmt.Println()
	fmt.Printf("\nscore: %d of %d non-equivalent mutants killed (%d listed as equivalent) in %s\n",
		killed, len(mutants)-equivalent, equivalent, took.Round(time.Second))
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}
