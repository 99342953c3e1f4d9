// Package yamledit edits YAML and JSON manifests in place. It parses a file
// with yaml.v3 only to locate nodes, then splices new text into the original
// bytes, so comments, key order, quoting, indentation, document separators,
// line endings and a byte order mark survive byte for byte outside the
// edited spans. It knows nothing about Kubernetes.
package yamledit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// utf8BOM is kept aside while parsing: yaml.v3 skips it and does not count it
// in columns.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Source is the text of one file, parsed into documents.
type Source struct {
	bom   []byte
	text  []byte
	lines []int // byte offset where each line starts, as libyaml breaks lines
	// Newline is the line break new lines are written with: the file's first
	// one, so CRLF files stay CRLF.
	Newline string
	// Docs are the documents of the file, in order. Each is a DocumentNode.
	Docs []*yaml.Node
}

// Error is a problem at a line of the file. Its message never quotes the
// input text.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// ErrUnsupported marks a layout this package cannot edit safely; callers
// leave such objects alone.
var ErrUnsupported = errors.New("unsupported layout")

// Parse reads every document of data. A syntax error anywhere fails the whole
// file, so a file is never edited on a partial understanding of it.
func Parse(data []byte) (*Source, error) {
	s := &Source{text: data, Newline: "\n"}
	if bytes.HasPrefix(data, utf8BOM) {
		s.bom, s.text = data[:len(utf8BOM)], data[len(utf8BOM):]
	}
	s.indexLines()
	dec := yaml.NewDecoder(bytes.NewReader(s.text))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, sanitize(err)
		}
		s.Docs = append(s.Docs, &doc)
	}
	return s, nil
}

var (
	lineRE        = regexp.MustCompile(`^yaml: line (\d+): `)
	parserErrorRE = regexp.MustCompile(`^(did not find expected (key|'-' indicator|',' or|node content|<document start>)|found (undefined tag handle|duplicate %|incompatible YAML))`)
	// Quoted input in a message: a duplicate key in double quotes, a value
	// in backquotes, an anchor name in single quotes. Other single-quoted
	// text (an expected ',') is the parser's own.
	quotedRE = regexp.MustCompile("`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\"|anchor '[^']*'")
)

// sanitize turns a yaml.v3 error into an Error with its line, and drops any
// quoted input from the message (CVE-2020-8564: input may hold credentials).
func sanitize(err error) *Error {
	msg := err.Error()
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		// yaml.v3 counts lines from 0 for parser errors (and from 1 for
		// scanner errors); the parser's errors point at the start of the
		// construct they were parsing.
		if parserErrorRE.MatchString(msg) {
			line++
		}
	}
	msg = quotedRE.ReplaceAllStringFunc(msg, func(q string) string {
		if strings.HasPrefix(q, "anchor ") {
			return "anchor ..."
		}
		return "..."
	})
	if len(msg) > 5 && msg[:6] == "yaml: " {
		msg = msg[6:]
	}
	return &Error{Line: line, Msg: "invalid YAML: " + msg}
}

// indexLines records line starts, breaking lines where libyaml does: CRLF,
// CR, LF, NEL, LS and PS, so yaml.v3's line numbers index this table.
func (s *Source) indexLines() {
	t := s.text
	s.lines = []int{0}
	first := true
	for i := 0; i < len(t); {
		n := breakLen(t, i)
		if n == 0 {
			i++
			continue
		}
		if first {
			first = false
			if nl := string(t[i : i+n]); nl == "\r\n" || nl == "\r" {
				s.Newline = nl
			}
		}
		i += n
		s.lines = append(s.lines, i)
	}
}

// breakLen returns the length of the line break at t[i], or 0.
func breakLen(t []byte, i int) int {
	switch {
	case t[i] == '\r' && i+1 < len(t) && t[i+1] == '\n':
		return 2
	case t[i] == '\r' || t[i] == '\n':
		return 1
	case t[i] == 0xC2 && i+1 < len(t) && t[i+1] == 0x85:
		return 2
	case t[i] == 0xE2 && i+2 < len(t) && t[i+1] == 0x80 && (t[i+2] == 0xA8 || t[i+2] == 0xA9):
		return 3
	}
	return 0
}

// Text returns the file's text without its byte order mark.
func (s *Source) Text() []byte { return s.text }

// lineOf returns the 1-based line holding offset off.
func (s *Source) lineOf(off int) int {
	return sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off })
}

// lineStart returns the offset where 1-based line l starts.
func (s *Source) lineStart(l int) int {
	if l < 1 {
		return 0
	}
	if l > len(s.lines) {
		return len(s.text)
	}
	return s.lines[l-1]
}

// nextLineStart returns the offset just past line l's break (the end of the
// text for the last line).
func (s *Source) nextLineStart(l int) int {
	if l >= len(s.lines) {
		return len(s.text)
	}
	return s.lines[l]
}

// lineEnd returns the offset of line l's break (or the end of the text).
func (s *Source) lineEnd(l int) int {
	end := s.nextLineStart(l)
	start := s.lineStart(l)
	for i := start; i < end; i++ {
		if breakLen(s.text, i) > 0 {
			return i
		}
	}
	return end
}

// Offset converts yaml.v3's 1-based line and rune column to a byte offset.
func (s *Source) Offset(line, col int) (int, error) {
	if line < 1 || line > len(s.lines) || col < 1 {
		return 0, fmt.Errorf("position %d:%d out of range: %w", line, col, ErrUnsupported)
	}
	off := s.lines[line-1]
	for i := 1; i < col; i++ {
		if off >= len(s.text) {
			return 0, fmt.Errorf("position %d:%d out of range: %w", line, col, ErrUnsupported)
		}
		_, n := utf8.DecodeRune(s.text[off:])
		off += n
	}
	return off, nil
}

// start returns the offset where node n's text starts, properties (anchor,
// tag) included.
func (s *Source) start(n *yaml.Node) (int, error) {
	return s.Offset(n.Line, n.Column)
}

// indentOf returns the number of leading spaces of line l.
func (s *Source) indentOf(l int) int {
	i := s.lineStart(l)
	n := 0
	for i+n < len(s.text) && s.text[i+n] == ' ' {
		n++
	}
	return n
}

// lineKind classifies line l: blank, comment, document marker or content.
type lineKind int

const (
	lineBlank lineKind = iota
	lineComment
	lineMarker
	lineContent
)

func (s *Source) kindOf(l int) lineKind {
	start, end := s.lineStart(l), s.lineEnd(l)
	t := s.text[start:end]
	if (bytes.HasPrefix(t, []byte("---")) || bytes.HasPrefix(t, []byte("..."))) && (len(t) == 3 || t[3] == ' ' || t[3] == '\t') {
		return lineMarker
	}
	for _, c := range t {
		switch c {
		case ' ', '\t':
			continue
		case '#':
			return lineComment
		default:
			return lineContent
		}
	}
	return lineBlank
}

// startsLine reports whether only spaces stand before off on its line.
func (s *Source) startsLine(off int) bool {
	for i := s.lineStart(s.lineOf(off)); i < off; i++ {
		if s.text[i] != ' ' {
			return false
		}
	}
	return true
}

// restIsBlank reports whether only whitespace or a comment follows off on its
// line.
func (s *Source) restIsBlank(off int) bool {
	end := s.lineEnd(s.lineOf(off))
	for i := off; i < end; i++ {
		switch s.text[i] {
		case ' ', '\t':
		case '#':
			return true
		default:
			return false
		}
	}
	return true
}
