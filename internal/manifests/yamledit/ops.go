package yamledit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// This file holds the edits the manifest rules need: remove a mapping entry
// or a sequence item, replace a scalar, and add entries to a list of
// `{name: x}` references, each in the style of the text around it.

// DeleteEntry removes the pair at m.Content[i] (key) and m.Content[i+1]
// (value) from mapping m. In block style it removes whole lines: the entry,
// comment lines directly above it at its indentation, and comment lines
// after it indented deeper than its key. It refuses to empty a mapping.
func (s *Source) DeleteEntry(m *yaml.Node, i int) ([]Edit, error) {
	if m.Kind != yaml.MappingNode || i < 0 || i+1 >= len(m.Content) || i%2 != 0 {
		return nil, fmt.Errorf("line %d: no entry %d: %w", m.Line, i/2, ErrUnsupported)
	}
	if len(m.Content) == 2 {
		return nil, fmt.Errorf("line %d: the mapping would be empty: %w", m.Line, ErrUnsupported)
	}
	if m.Style&yaml.FlowStyle != 0 {
		spans, err := s.entrySpans(m)
		if err != nil {
			return nil, err
		}
		return s.deleteFlowElement(spans, i/2)
	}
	k, v := m.Content[i], m.Content[i+1]
	ks, err := s.start(k)
	if err != nil {
		return nil, err
	}
	if !s.startsLine(ks) || s.text[ks] == '?' {
		return nil, fmt.Errorf("line %d: key does not start its line: %w", k.Line, ErrUnsupported)
	}
	ve, err := s.end(v, false)
	if err != nil {
		return nil, err
	}
	if !s.restIsBlank(ve) {
		return nil, fmt.Errorf("line %d: text after the value: %w", k.Line, ErrUnsupported)
	}
	first, last := s.lineOf(ks), s.lineOf(max(ve-1, ks))
	indent := ks - s.lineStart(first)
	for l := last + 1; l <= len(s.lines) && s.kindOf(l) == lineComment && s.indentOf(l) > indent; l++ {
		last = l
	}
	for l := first - 1; l >= 1 && s.kindOf(l) == lineComment && s.indentOf(l) == indent; l-- {
		first = l
	}
	// Between two blank lines, take one along, so no double gap is left.
	if first > 1 && s.kindOf(first-1) == lineBlank && last < len(s.lines) && s.kindOf(last+1) == lineBlank && s.nextLineStart(last+1) > s.nextLineStart(last) {
		last++
	}
	return []Edit{{Start: s.lineStart(first), End: s.nextLineStart(last)}}, nil
}

// DeleteItem removes item i of sequence seq, which must keep at least one.
func (s *Source) DeleteItem(seq *yaml.Node, i int) ([]Edit, error) {
	if seq.Kind != yaml.SequenceNode || i < 0 || i >= len(seq.Content) {
		return nil, fmt.Errorf("line %d: no item %d: %w", seq.Line, i, ErrUnsupported)
	}
	if len(seq.Content) == 1 {
		return nil, fmt.Errorf("line %d: the list would be empty: %w", seq.Line, ErrUnsupported)
	}
	if seq.Style&yaml.FlowStyle != 0 {
		spans, err := s.itemSpans(seq)
		if err != nil {
			return nil, err
		}
		return s.deleteFlowElement(spans, i)
	}
	item := seq.Content[i]
	dash, err := s.dash(item)
	if err != nil {
		return nil, err
	}
	ie, err := s.end(item, false)
	if err != nil {
		return nil, err
	}
	if !s.restIsBlank(ie) {
		return nil, fmt.Errorf("line %d: text after the item: %w", item.Line, ErrUnsupported)
	}
	return []Edit{{Start: s.lineStart(s.lineOf(dash)), End: s.nextLineStart(s.lineOf(max(ie-1, dash)))}}, nil
}

// ReplaceScalar replaces the value of scalar n, keeping its quoting style
// (a plain scalar is quoted when the new value would not read as a string).
// inFlow tells whether n sits in a flow collection.
func (s *Source) ReplaceScalar(n *yaml.Node, value string, inFlow bool) ([]Edit, error) {
	if n.Kind != yaml.ScalarNode {
		return nil, fmt.Errorf("line %d: not a scalar: %w", n.Line, ErrUnsupported)
	}
	start, end, err := s.scalarSpan(n, inFlow)
	if err != nil {
		return nil, err
	}
	if start == end {
		return nil, fmt.Errorf("line %d: empty scalar: %w", n.Line, ErrUnsupported)
	}
	return []Edit{{Start: start, End: end, Text: renderScalar(value, n.Style, inFlow)}}, nil
}

// AppendNames appends one `{name: x}` item per name to sequence seq,
// shaped like its last item when that is a plain `name: y` reference, so
// quoting, spacing and line layout match. jsonStyle picks JSON syntax for a
// flow list that has no item to copy.
func (s *Source) AppendNames(seq *yaml.Node, names []string, jsonStyle bool) ([]Edit, error) {
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: not a list: %w", seq.Line, ErrUnsupported)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if seq.Style&yaml.FlowStyle != 0 {
		return s.appendFlow(seq, names, jsonStyle)
	}
	if len(seq.Content) == 0 {
		return nil, fmt.Errorf("line %d: empty block list: %w", seq.Line, ErrUnsupported)
	}
	last := seq.Content[len(seq.Content)-1]
	dash, err := s.dash(last)
	if err != nil {
		return nil, err
	}
	ie, err := s.end(last, false)
	if err != nil {
		return nil, err
	}
	if !s.restIsBlank(ie) {
		return nil, fmt.Errorf("line %d: text after the item: %w", last.Line, ErrUnsupported)
	}
	lastLine := s.lineOf(max(ie-1, dash))
	at := s.nextLineStart(lastLine)
	var b strings.Builder
	if at == len(s.text) && !s.endsWithBreak() {
		b.WriteString(s.Newline)
	}
	tmpl, nameStart, nameEnd, ok := s.cloneable(last, s.lineStart(s.lineOf(dash)), s.lineEnd(lastLine), false)
	for _, name := range names {
		if ok {
			b.WriteString(tmpl[:nameStart])
			b.WriteString(renderScalar(name, last.Content[1].Style, last.Style&yaml.FlowStyle != 0))
			b.WriteString(tmpl[nameEnd:])
		} else {
			b.WriteString(strings.Repeat(" ", dash-s.lineStart(s.lineOf(dash))))
			b.WriteString("- name: " + renderScalar(name, 0, false))
		}
		b.WriteString(s.Newline)
	}
	return []Edit{{Start: at, End: at, Text: b.String()}}, nil
}

func (s *Source) appendFlow(seq *yaml.Node, names []string, jsonStyle bool) ([]Edit, error) {
	open, err := s.contentStart(seq)
	if err != nil {
		return nil, err
	}
	if len(seq.Content) == 0 {
		items := make([]string, len(names))
		for i, n := range names {
			items[i] = renderFlowRef(n, jsonStyle)
		}
		return []Edit{{Start: open + 1, End: open + 1, Text: strings.Join(items, ", ")}}, nil
	}
	last := seq.Content[len(seq.Content)-1]
	ls, err := s.start(last)
	if err != nil {
		return nil, err
	}
	le, err := s.end(last, true)
	if err != nil {
		return nil, err
	}
	sep := ", "
	switch {
	case len(seq.Content) >= 2:
		pe, err := s.end(seq.Content[len(seq.Content)-2], true)
		if err != nil {
			return nil, err
		}
		if between := string(s.text[pe:ls]); !strings.Contains(between, "#") {
			sep = between
		}
	case s.startsLine(ls):
		sep = "," + s.Newline + string(s.text[s.lineStart(s.lineOf(ls)):ls])
	}
	tmpl, nameStart, nameEnd, ok := s.cloneable(last, ls, le, true)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(sep)
		if ok {
			b.WriteString(tmpl[:nameStart])
			b.WriteString(renderScalar(name, last.Content[1].Style, true))
			b.WriteString(tmpl[nameEnd:])
			continue
		}
		quotedKeys := last.Kind == yaml.MappingNode && len(last.Content) > 0 && last.Content[0].Style&yaml.DoubleQuotedStyle != 0
		b.WriteString(renderFlowRef(name, jsonStyle || quotedKeys))
	}
	return []Edit{{Start: le, End: le, Text: b.String()}}, nil
}

// cloneable returns the text [from, to) of item as a template when item is
// a lone `name: value` reference without anchors, tags or comments, with the
// span of the value inside it.
func (s *Source) cloneable(item *yaml.Node, from, to int, inFlow bool) (string, int, int, bool) {
	if item.Kind != yaml.MappingNode || len(item.Content) != 2 || item.Anchor != "" || item.Style&yaml.TaggedStyle != 0 {
		return "", 0, 0, false
	}
	k, v := item.Content[0], item.Content[1]
	if k.Value != "name" || v.Kind != yaml.ScalarNode || v.Anchor != "" || v.Style&(yaml.TaggedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return "", 0, 0, false
	}
	vs, ve, err := s.scalarSpan(v, inFlow || item.Style&yaml.FlowStyle != 0)
	if err != nil || vs < from || ve > to || vs == ve {
		return "", 0, 0, false
	}
	tmpl := string(s.text[from:to])
	if strings.Contains(tmpl[:vs-from]+tmpl[ve-from:], "#") {
		return "", 0, 0, false
	}
	return tmpl, vs - from, ve - from, true
}

// AddNameList adds `key:` with a list of `{name: x}` references as the last
// entry of mapping m, in the mapping's style: block entries at its
// indentation (list dashes indented as elsewhere in doc), flow entries on
// their own line when the mapping's entries are, JSON when its keys are
// double-quoted.
func (s *Source) AddNameList(doc, m *yaml.Node, key string, names []string) ([]Edit, error) {
	if m.Kind != yaml.MappingNode || len(m.Content) == 0 {
		return nil, fmt.Errorf("line %d: not a mapping with entries: %w", m.Line, ErrUnsupported)
	}
	lastKey, lastVal := m.Content[len(m.Content)-2], m.Content[len(m.Content)-1]
	flow := m.Style&yaml.FlowStyle != 0
	ve, err := s.end(lastVal, flow)
	if err != nil {
		return nil, err
	}
	lks, err := s.start(lastKey)
	if err != nil {
		return nil, err
	}
	if flow {
		return s.addFlowList(m, lastKey, lks, ve, key, names)
	}
	if !s.restIsBlank(ve) {
		return nil, fmt.Errorf("line %d: text after the value: %w", lastKey.Line, ErrUnsupported)
	}
	prefix := s.text[s.lineStart(s.lineOf(lks)):lks]
	if len(bytes.Trim(prefix, " -")) != 0 {
		return nil, fmt.Errorf("line %d: key is not indented with spaces: %w", lastKey.Line, ErrUnsupported)
	}
	indent := strings.Repeat(" ", len(prefix))
	at := s.nextLineStart(s.lineOf(max(ve-1, lks)))
	var b strings.Builder
	if at == len(s.text) && !s.endsWithBreak() {
		b.WriteString(s.Newline)
	}
	b.WriteString(indent + renderScalar(key, lastKey.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle), false) + ":" + s.Newline)
	b.WriteString(s.blockRefs(indent+strings.Repeat(" ", s.seqIndent(doc)), names))
	return []Edit{{Start: at, End: at, Text: b.String()}}, nil
}

func (s *Source) addFlowList(m, lastKey *yaml.Node, lks, ve int, key string, names []string) ([]Edit, error) {
	jsonStyle := lastKey.Style&yaml.DoubleQuotedStyle != 0
	var b strings.Builder
	b.WriteString(",")
	k := renderScalar(key, lastKey.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle), true)
	if !s.startsLine(lks) {
		b.WriteString(" " + k + ": " + renderFlowRefs(names, jsonStyle))
		return []Edit{{Start: ve, End: ve, Text: b.String()}}, nil
	}
	indent := string(s.text[s.lineStart(s.lineOf(lks)):lks])
	open, err := s.contentStart(m)
	if err != nil {
		return nil, err
	}
	unit := len(indent) - s.indentOf(s.lineOf(open))
	if unit <= 0 {
		unit = 2
	}
	nl := s.Newline
	b.WriteString(nl + indent + k + ": ")
	if !jsonStyle {
		b.WriteString(renderFlowRefs(names, false))
		return []Edit{{Start: ve, End: ve, Text: b.String()}}, nil
	}
	in1, in2 := indent+strings.Repeat(" ", unit), indent+strings.Repeat(" ", 2*unit)
	b.WriteString("[")
	for i, n := range names {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(nl + in1 + "{" + nl + in2 + `"name": ` + renderScalar(n, yaml.DoubleQuotedStyle, true) + nl + in1 + "}")
	}
	b.WriteString(nl + indent + "]")
	return []Edit{{Start: ve, End: ve, Text: b.String()}}, nil
}

// SetNullList gives the key at m.Content[i], whose value is null, a list of
// `{name: x}` references.
func (s *Source) SetNullList(doc, m *yaml.Node, i int, names []string) ([]Edit, error) {
	if m.Kind != yaml.MappingNode || i < 0 || i+1 >= len(m.Content) {
		return nil, fmt.Errorf("line %d: no entry %d: %w", m.Line, i/2, ErrUnsupported)
	}
	k, v := m.Content[i], m.Content[i+1]
	if v.Kind != yaml.ScalarNode || v.Tag != "!!null" {
		return nil, fmt.Errorf("line %d: value is not null: %w", k.Line, ErrUnsupported)
	}
	flow := m.Style&yaml.FlowStyle != 0
	vs, ve, err := s.scalarSpan(v, flow)
	if err != nil {
		return nil, err
	}
	if flow {
		if vs == ve {
			return nil, fmt.Errorf("line %d: implicit null in a flow mapping: %w", k.Line, ErrUnsupported)
		}
		return []Edit{{Start: vs, End: ve, Text: renderFlowRefs(names, k.Style&yaml.DoubleQuotedStyle != 0)}}, nil
	}
	ks, err := s.start(k)
	if err != nil {
		return nil, err
	}
	if !s.startsLine(ks) || s.lineOf(vs) != s.lineOf(ks) {
		return nil, fmt.Errorf("line %d: unusual layout: %w", k.Line, ErrUnsupported)
	}
	for vs > ks && isSpace(s.text[vs-1]) && ve > vs {
		vs--
	}
	indent := strings.Repeat(" ", ks-s.lineStart(s.lineOf(ks)))
	refs := strings.TrimSuffix(s.blockRefs(indent+strings.Repeat(" ", s.seqIndent(doc)), names), s.Newline)
	eol := s.lineEnd(s.lineOf(ks))
	return []Edit{{Start: vs, End: ve}, {Start: eol, End: eol, Text: s.Newline + refs}}, nil
}

func (s *Source) blockRefs(indent string, names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(indent + "- name: " + renderScalar(n, 0, false) + s.Newline)
	}
	return b.String()
}

func (s *Source) endsWithBreak() bool {
	return len(s.text) > 0 && s.lines[len(s.lines)-1] == len(s.text)
}

// dash returns the offset of the `-` that opens block sequence item n.
func (s *Source) dash(n *yaml.Node) (int, error) {
	i, err := s.start(n)
	if err != nil {
		return 0, err
	}
	j := i - 1
	for j >= 0 && s.isWhite(j) {
		j--
	}
	if j < 0 || s.text[j] != '-' || !s.startsLine(j) {
		return 0, fmt.Errorf("line %d: item does not start its line with a dash: %w", n.Line, ErrUnsupported)
	}
	return j, nil
}

// SeqIndent returns how far block list dashes are indented past their key
// in doc, so new text can match.
func (s *Source) SeqIndent(doc *yaml.Node) int { return s.seqIndent(doc) }

// seqIndent returns how far block list dashes are indented past their key
// in doc (0 as kubectl writes them, 2 as many people do), from the first
// block list under a key.
func (s *Source) seqIndent(doc *yaml.Node) int {
	var found = -1
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if found >= 0 || n == nil {
			return
		}
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Anchor == "" {
					ks, err1 := s.start(k)
					d, err2 := s.dash(v.Content[0])
					if err1 == nil && err2 == nil && s.startsLine(ks) {
						found = max(0, (d-s.lineStart(s.lineOf(d)))-(ks-s.lineStart(s.lineOf(ks))))
						return
					}
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(doc)
	return max(found, 0)
}

// entrySpans returns [key start, value end) of each entry of flow mapping m.
func (s *Source) entrySpans(m *yaml.Node) ([][2]int, error) {
	spans := make([][2]int, 0, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		ks, err := s.start(m.Content[i])
		if err != nil {
			return nil, err
		}
		ve, err := s.end(m.Content[i+1], true)
		if err != nil {
			return nil, err
		}
		if ve <= ks {
			return nil, fmt.Errorf("line %d: entry without a value: %w", m.Content[i].Line, ErrUnsupported)
		}
		spans = append(spans, [2]int{ks, ve})
	}
	return spans, nil
}

// itemSpans returns [start, end) of each item of flow sequence seq.
func (s *Source) itemSpans(seq *yaml.Node) ([][2]int, error) {
	spans := make([][2]int, 0, len(seq.Content))
	for _, it := range seq.Content {
		is, err := s.start(it)
		if err != nil {
			return nil, err
		}
		ie, err := s.end(it, true)
		if err != nil {
			return nil, err
		}
		spans = append(spans, [2]int{is, ie})
	}
	return spans, nil
}

// deleteFlowElement removes element k of a flow collection with the
// given spans, and the comma that separated it: whole lines when the
// element has its own lines (pretty-printed JSON), else just its text.
func (s *Source) deleteFlowElement(spans [][2]int, k int) ([]Edit, error) {
	n := len(spans)
	if n == 1 {
		return []Edit{{Start: spans[0][0], End: spans[0][1]}}, nil
	}
	start, end := spans[k][0], spans[k][1]
	if k < n-1 {
		comma := s.skipWhite(end)
		next := spans[k+1][0]
		if comma >= len(s.text) || s.text[comma] != ',' {
			return nil, fmt.Errorf("line %d: no comma after the element: %w", s.lineOf(end), ErrUnsupported)
		}
		if s.startsLine(start) && s.restIsBlank(comma+1) && s.lineOf(next) > s.lineOf(comma) {
			return []Edit{{Start: s.lineStart(s.lineOf(start)), End: s.nextLineStart(s.lineOf(comma))}}, nil
		}
		if bytes.ContainsRune(s.text[end:next], '#') {
			return nil, fmt.Errorf("line %d: comment between elements: %w", s.lineOf(end), ErrUnsupported)
		}
		return []Edit{{Start: start, End: next}}, nil
	}
	comma := s.skipWhite(spans[k-1][1])
	if comma >= len(s.text) || s.text[comma] != ',' {
		return nil, fmt.Errorf("line %d: no comma before the element: %w", s.lineOf(start), ErrUnsupported)
	}
	if s.startsLine(start) && s.restIsBlank(end) && s.lineOf(comma) < s.lineOf(start) {
		return []Edit{{Start: comma, End: comma + 1}, {Start: s.lineStart(s.lineOf(start)), End: s.nextLineStart(s.lineOf(end))}}, nil
	}
	if !bytes.ContainsRune(s.text[comma:start], '#') {
		return []Edit{{Start: comma, End: end}}, nil
	}
	return []Edit{{Start: comma, End: comma + 1}, {Start: start, End: end}}, nil
}

// renderFlowRefs renders `[{name: a}, {name: b}]`, or its JSON form.
func renderFlowRefs(names []string, jsonStyle bool) string {
	items := make([]string, len(names))
	for i, n := range names {
		items[i] = renderFlowRef(n, jsonStyle)
	}
	return "[" + strings.Join(items, ", ") + "]"
}

func renderFlowRef(name string, jsonStyle bool) string {
	if jsonStyle {
		return `{"name": ` + renderScalar(name, yaml.DoubleQuotedStyle, true) + "}"
	}
	return "{name: " + renderScalar(name, 0, true) + "}"
}

// renderScalar writes value in the given quoting style; a plain scalar that
// would not read back as the same string is double-quoted instead.
func renderScalar(value string, style yaml.Style, inFlow bool) string {
	switch {
	case style&yaml.SingleQuotedStyle != 0 && !strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "'" + strings.ReplaceAll(value, "'", "''") + "'"
	case style&yaml.DoubleQuotedStyle != 0, !plainSafe(value, inFlow):
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(value) // a string always encodes
		return strings.TrimSuffix(b.String(), "\n")
	}
	return value
}

// plainSafe reports whether value can be written as a plain scalar and read
// back as the same string by YAML 1.1 (kubectl's sigs.k8s.io/yaml) and 1.2
// parsers alike. In doubt it says no: quoting is always correct.
func plainSafe(value string, inFlow bool) bool {
	if value == "" || strings.TrimSpace(value) != value {
		return false
	}
	if strings.ContainsAny(value[:1], "-?:,[]{}#&*!|>'\"%@`+.0123456789~") {
		return false
	}
	if strings.Contains(value, ": ") || strings.Contains(value, " #") || strings.HasSuffix(value, ":") {
		return false
	}
	if inFlow && strings.ContainsAny(value, ",[]{}") {
		return false
	}
	if strings.ContainsFunc(value, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xFEFF
	}) {
		return false
	}
	switch strings.ToLower(value) {
	case "y", "yes", "n", "no", "on", "off", "true", "false", "null":
		return false
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(value), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	c := n.Content[0]
	return c.Kind == yaml.ScalarNode && c.ShortTag() == "!!str" && c.Value == value
}

// RenderScalar returns value as a plain YAML scalar, or double-quoted when a
// plain one would not read back as the same string.
func RenderScalar(value string) string { return renderScalar(value, 0, false) }

// AppendScalars appends values to a list of scalars (kustomize's
// resources:), in the list's style: a block item `- value` at the last
// item's dash, quoted as the last item is; in a flow list, after its last
// item. Comments and everything else stay as they are. An empty block list
// or a last item that is not a plain scalar is ErrUnsupported.
func (s *Source) AppendScalars(seq *yaml.Node, values []string) ([]Edit, error) {
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: not a list: %w", seq.Line, ErrUnsupported)
	}
	if len(values) == 0 {
		return nil, nil
	}
	flow := seq.Style&yaml.FlowStyle != 0
	if len(seq.Content) == 0 {
		if !flow {
			return nil, fmt.Errorf("line %d: empty block list: %w", seq.Line, ErrUnsupported)
		}
		open, err := s.contentStart(seq)
		if err != nil {
			return nil, err
		}
		items := make([]string, len(values))
		for i, v := range values {
			items[i] = renderScalar(v, 0, true)
		}
		return []Edit{{Start: open + 1, End: open + 1, Text: strings.Join(items, ", ")}}, nil
	}
	last := seq.Content[len(seq.Content)-1]
	if last.Kind != yaml.ScalarNode || last.Anchor != "" || last.Style&(yaml.TaggedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return nil, fmt.Errorf("line %d: the last item is not a plain scalar: %w", last.Line, ErrUnsupported)
	}
	if flow {
		le, err := s.end(last, true)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		for _, v := range values {
			b.WriteString(", " + renderScalar(v, last.Style, true))
		}
		return []Edit{{Start: le, End: le, Text: b.String()}}, nil
	}
	dash, err := s.dash(last)
	if err != nil {
		return nil, err
	}
	ie, err := s.end(last, false)
	if err != nil {
		return nil, err
	}
	if !s.restIsBlank(ie) {
		return nil, fmt.Errorf("line %d: text after the item: %w", last.Line, ErrUnsupported)
	}
	lastLine := s.lineOf(max(ie-1, dash))
	at := s.nextLineStart(lastLine)
	var b strings.Builder
	if at == len(s.text) && !s.endsWithBreak() {
		b.WriteString(s.Newline)
	}
	prefix := string(s.text[s.lineStart(s.lineOf(dash)):dash])
	vs, err := s.start(last)
	if err != nil {
		return nil, err
	}
	between := string(s.text[dash:vs]) // "- " as written
	if strings.ContainsAny(between, "\r\n#") || strings.Trim(prefix, " ") != "" {
		between = "- "
		prefix = strings.Repeat(" ", len(prefix))
	}
	for _, v := range values {
		b.WriteString(prefix + between + renderScalar(v, last.Style, false) + s.Newline)
	}
	return []Edit{{Start: at, End: at, Text: b.String()}}, nil
}
