package yamledit

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// This file finds where nodes end. yaml.v3 records only where a node starts,
// so ends are found by scanning the original text with the few YAML rules
// that matter for it: quoting, flow brackets, comments and block scalars.

func isSpace(c byte) bool { return c == ' ' || c == '\t' }

func isFlowIndicator(c byte) bool {
	return c == ',' || c == '[' || c == ']' || c == '{' || c == '}'
}

// isWhite reports whether t[i] is a space, tab or line break.
func (s *Source) isWhite(i int) bool {
	return isSpace(s.text[i]) || breakLen(s.text, i) > 0
}

// skipComment moves past a comment to its line break.
func (s *Source) skipComment(i int) int {
	for i < len(s.text) && breakLen(s.text, i) == 0 {
		i++
	}
	return i
}

// skipWhite moves past spaces, line breaks and comments.
func (s *Source) skipWhite(i int) int {
	for i < len(s.text) {
		switch {
		case s.isWhite(i):
			i += max(breakLen(s.text, i), 1)
		case s.text[i] == '#' && (i == 0 || s.isWhite(i-1)):
			i = s.skipComment(i)
		default:
			return i
		}
	}
	return i
}

// contentStart returns where n's content starts, past its anchor and tag.
func (s *Source) contentStart(n *yaml.Node) (int, error) {
	i, err := s.start(n)
	if err != nil {
		return 0, err
	}
	for i < len(s.text) && (s.text[i] == '&' || s.text[i] == '!') {
		for i < len(s.text) && !s.isWhite(i) && !isFlowIndicator(s.text[i]) {
			i++
		}
		i = s.skipWhite(i)
	}
	return i, nil
}

// scalarSpan returns the offsets of scalar n's text (quotes included),
// without properties. flow tells whether n sits inside a flow collection.
// Multi-line plain scalars and block scalars are not supported here.
func (s *Source) scalarSpan(n *yaml.Node, flow bool) (int, int, error) {
	i, err := s.contentStart(n)
	if err != nil {
		return 0, 0, err
	}
	if n.Tag == "!!null" && n.Value == "" && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return i, i, nil
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		end, err := s.quotedEnd(i, '"')
		return i, end, err
	case n.Style&yaml.SingleQuotedStyle != 0:
		end, err := s.quotedEnd(i, '\'')
		return i, end, err
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return 0, 0, fmt.Errorf("line %d: block scalar: %w", n.Line, ErrUnsupported)
	}
	end := i
	for end < len(s.text) && breakLen(s.text, end) == 0 {
		c := s.text[end]
		if c == '#' && end > i && isSpace(s.text[end-1]) {
			break
		}
		if flow && isFlowIndicator(c) {
			break
		}
		if c == ':' && (end+1 == len(s.text) || s.isWhite(end+1) || (flow && isFlowIndicator(s.text[end+1]))) {
			break
		}
		end++
	}
	for end > i && isSpace(s.text[end-1]) {
		end--
	}
	if string(s.text[i:end]) != n.Value {
		return 0, 0, fmt.Errorf("line %d: multi-line plain scalar: %w", n.Line, ErrUnsupported)
	}
	return i, end, nil
}

// quotedEnd returns the offset just past the closing quote of the quoted
// scalar opening at i.
func (s *Source) quotedEnd(i int, q byte) (int, error) {
	if i >= len(s.text) || s.text[i] != q {
		return 0, fmt.Errorf("offset %d: expected a quote: %w", i, ErrUnsupported)
	}
	for j := i + 1; j < len(s.text); j++ {
		switch {
		case q == '"' && s.text[j] == '\\':
			j++
		case s.text[j] == q && q == '\'' && j+1 < len(s.text) && s.text[j+1] == '\'':
			j++
		case s.text[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("offset %d: unterminated quote: %w", i, ErrUnsupported)
}

// flowEnd returns the offset just past the bracket closing the flow
// collection that opens at i.
func (s *Source) flowEnd(i int) (int, error) {
	if i >= len(s.text) || (s.text[i] != '[' && s.text[i] != '{') {
		return 0, fmt.Errorf("offset %d: expected a flow collection: %w", i, ErrUnsupported)
	}
	depth := 0
	tokenStart := true
	for j := i; j < len(s.text); j++ {
		c := s.text[j]
		switch {
		case c == '[' || c == '{':
			depth++
			tokenStart = true
			continue
		case c == ']' || c == '}':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		case (c == '"' || c == '\'') && tokenStart:
			end, err := s.quotedEnd(j, c)
			if err != nil {
				return 0, err
			}
			j = end - 1
		case c == '#' && j > 0 && s.isWhite(j-1):
			j = s.skipComment(j) - 1
		}
		tokenStart = c == ',' || c == ':' || s.isWhite(j)
	}
	return 0, fmt.Errorf("offset %d: unterminated flow collection: %w", i, ErrUnsupported)
}

// end returns the offset just past the text of node n (not counting comments
// after it).
func (s *Source) end(n *yaml.Node, flow bool) (int, error) {
	switch n.Kind {
	case yaml.AliasNode:
		i, err := s.start(n)
		return i + 1 + len(n.Value), err
	case yaml.ScalarNode:
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return s.blockScalarEnd(n)
		}
		_, end, err := s.scalarSpan(n, flow)
		return end, err
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			i, err := s.contentStart(n)
			if err != nil {
				return 0, err
			}
			return s.flowEnd(i)
		}
		if len(n.Content) == 0 {
			return s.contentStart(n)
		}
		return s.end(n.Content[len(n.Content)-1], false)
	}
	return 0, fmt.Errorf("line %d: node kind %d: %w", n.Line, n.Kind, ErrUnsupported)
}

// blockScalarEnd returns the end of the last non-blank line of a literal or
// folded scalar: its content lines are those indented deeper than the line
// of its header.
func (s *Source) blockScalarEnd(n *yaml.Node) (int, error) {
	i, err := s.contentStart(n)
	if err != nil {
		return 0, err
	}
	header := s.lineOf(i)
	parent := s.indentOf(header)
	last := header
	end := s.lineEnd(header)
	for l := header + 1; l <= len(s.lines); l++ {
		k := s.kindOf(l)
		if k == lineBlank {
			continue
		}
		if s.indentOf(l) <= parent || k == lineMarker {
			break
		}
		last = l
	}
	if last != header {
		end = s.lineEnd(last)
	}
	return end, nil
}
