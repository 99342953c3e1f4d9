package manifests

import (
	"path/filepath"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
)

// Diff renders a change as a unified diff with three lines of context, with
// git's a/ and b/ prefixes (and /dev/null for a created file); an absolute
// path is written as git writes it, a/tmp/x.yaml rather than a//tmp/x.yaml.
// Lines keep their own endings, so a CRLF file shows its carriage returns.
func Diff(c Change) string {
	path := strings.TrimPrefix(filepath.ToSlash(c.Path), "/")
	from, to := "a/"+path, "b/"+path
	if c.Created {
		from = "/dev/null"
	}
	out, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A:        splitLines(string(c.Before)),
		B:        splitLines(string(c.After)),
		FromFile: from,
		ToFile:   to,
		Context:  3,
	})
	if err != nil { // writes to a strings.Builder: cannot fail
		return ""
	}
	return out
}

// splitLines splits s after each "\n", marking a last line without one as
// diff does.
func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if last := lines[len(lines)-1]; last == "" {
		lines = lines[:len(lines)-1]
	} else {
		lines[len(lines)-1] = last + "\n\\ No newline at end of file\n"
	}
	return lines
}
