package yamledit

import (
	"bytes"
	"fmt"
	"sort"
)

// Edit replaces the bytes [Start, End) of a Source's text (without its byte
// order mark) with Text. Start == End inserts.
type Edit struct {
	Start, End int
	Text       string
}

// Apply returns the file with the edits applied, its byte order mark kept.
// Identical edits (two objects sharing a node through an alias) apply once;
// overlapping ones are an error, so a file is never edited on a guess.
// Insertions at the same offset keep their order.
func (s *Source) Apply(edits []Edit) ([]byte, error) {
	sorted := make([]Edit, 0, len(edits))
	for _, e := range edits {
		if e.Start < 0 || e.End < e.Start || e.End > len(s.text) {
			return nil, fmt.Errorf("edit [%d,%d) outside the file: %w", e.Start, e.End, ErrUnsupported)
		}
		dup := false
		for _, o := range sorted {
			if o == e && e.Start != e.End {
				dup = true
				break
			}
		}
		if !dup {
			sorted = append(sorted, e)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Start != sorted[j].Start {
			return sorted[i].Start < sorted[j].Start
		}
		return sorted[i].End < sorted[j].End
	})
	var out bytes.Buffer
	out.Grow(len(s.bom) + len(s.text) + 64)
	out.Write(s.bom)
	pos := 0
	for _, e := range sorted {
		if e.Start < pos {
			return nil, fmt.Errorf("edits overlap at line %d: %w", s.lineOf(e.Start), ErrUnsupported)
		}
		out.Write(s.text[pos:e.Start])
		out.WriteString(e.Text)
		pos = e.End
	}
	out.Write(s.text[pos:])
	return out.Bytes(), nil
}
