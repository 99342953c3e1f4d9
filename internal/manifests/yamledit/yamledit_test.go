package yamledit

import (
	"errors"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// mapping returns the mapping at keys below the first document's root.
func mapping(t *testing.T, s *Source, keys ...string) *yaml.Node {
	t.Helper()
	n := s.Docs[0].Content[0]
	for _, k := range keys {
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				n, found = n.Content[i+1], true
				break
			}
		}
		if !found {
			t.Fatalf("no key %q", k)
		}
	}
	return n
}

func TestDeleteEntry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		index          int
	}{
		{"block middle", "a: 1\nb:\n- x\nc: 3\n", "a: 1\nc: 3\n", 2},
		{"block last without newline", "a: 1\nb: [x]", "a: 1\n", 2},
		{"block with head comment", "a: 1\n# about b\nb: 2\nc: 3\n", "a: 1\nc: 3\n", 2},
		{"flow inline middle", "{a: 1, b: 2, c: 3}\n", "{a: 1, c: 3}\n", 2},
		{"flow inline last", "{a: 1, b: [x, y]}\n", "{a: 1}\n", 2},
		{"json pretty last", "{\n  \"a\": 1,\n  \"b\": [\n    1\n  ]\n}\n", "{\n  \"a\": 1\n}\n", 2},
		{"json pretty first", "{\n  \"a\": 1,\n  \"b\": 2\n}\n", "{\n  \"b\": 2\n}\n", 0},
		{"crlf", "a: 1\r\nb: 2\r\nc: 3\r\n", "a: 1\r\nc: 3\r\n", 2},
		{"bom kept", "\ufeffa: 1\nb: 2\n", "\ufeffa: 1\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			edits, err := s.DeleteEntry(mapping(t, s), tc.index)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Apply(edits)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDeleteEntryRefusesToEmptyAMapping(t *testing.T) {
	t.Parallel()
	s, err := Parse([]byte("a: {b: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteEntry(mapping(t, s, "a"), 0); err == nil {
		t.Error("emptied a mapping")
	}
}

func TestAppendNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"block clones quoting", "l:\n  - name: 'a'\n", "l:\n  - name: 'a'\n  - name: 'b'\n"},
		{"block flow items", "l:\n- {name: a}\n", "l:\n- {name: a}\n- {name: b}\n"},
		{"block with comment renders plain", "l:\n- name: a # c\n", "l:\n- name: a # c\n- name: b\n"},
		{"flow", "l: [{name: a}]\n", "l: [{name: a}, {name: b}]\n"},
		{"flow empty", "l: []\n", "l: [{name: b}]\n"},
		{"json multi-line", "{\"l\": [\n  {\"name\": \"a\"}\n]}\n", "{\"l\": [\n  {\"name\": \"a\"},\n  {\"name\": \"b\"}\n]}\n"},
		{"no final newline", "l:\n- name: a", "l:\n- name: a\n- name: b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			edits, err := s.AppendNames(mapping(t, s, "l"), []string{"b"}, false)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := s.Apply(edits)
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRenderScalar(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value string
		style yaml.Style
		want  string
	}{
		{"regcred", 0, "regcred"},
		{"123", 0, `"123"`},
		{"1e3", 0, `"1e3"`},
		{"yes", 0, `"yes"`},
		{"on", 0, `"on"`},
		{"null", 0, `"null"`},
		{"a.b-c", 0, "a.b-c"},
		{"regcred", yaml.SingleQuotedStyle, "'regcred'"},
		{"it's", yaml.SingleQuotedStyle, "'it''s'"},
		{"regcred", yaml.DoubleQuotedStyle, `"regcred"`},
		{"a\"b", yaml.DoubleQuotedStyle, `"a\"b"`},
	} {
		if got := renderScalar(tc.value, tc.style, false); got != tc.want {
			t.Errorf("renderScalar(%q, %v) = %s, want %s", tc.value, tc.style, got, tc.want)
		}
	}
}

func TestParseErrorsNameTheLineAndNotTheInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		line int
	}{
		{"a: 1\nb: [x\n", 2},
		{"a: 1\nb: \"hunter2\\q\"\n", 2},
		{"a: *hunter2\n", 0},
	} {
		_, err := Parse([]byte(tc.in))
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Parse(%q) error %v, want *Error", tc.in, err)
		}
		if e.Line != tc.line {
			t.Errorf("Parse(%q) line %d, want %d (%s)", tc.in, e.Line, tc.line, e.Msg)
		}
		if strings.Contains(e.Error(), "hunter2") {
			t.Errorf("error quotes the input: %s", e)
		}
	}
}

// FuzzParse checks that locating ends never panics: every node's end is
// found or refused.
func FuzzParse(f *testing.F) {
	f.Add([]byte("a: [1, {b: 'c'}]\n# x\nd: |\n  lit\n"))
	f.Add([]byte("{\"a\": [\"b\", 1]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		var visit func(n *yaml.Node, flow bool)
		visit = func(n *yaml.Node, flow bool) {
			if end, err := s.end(n, flow); err == nil && (end < 0 || end > len(s.text)) {
				t.Fatalf("end %d outside the text", end)
			}
			for _, c := range n.Content {
				visit(c, flow || n.Style&yaml.FlowStyle != 0)
			}
		}
		for _, d := range s.Docs {
			visit(d, false)
		}
	})
}

func TestAppendScalars(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"block, comments kept", "# the app\nresources:\n  - app.yaml # main\n# trailing\nnamespace: shop\n",
			"# the app\nresources:\n  - app.yaml # main\n  - serviceaccount-default.yaml\n# trailing\nnamespace: shop\n"},
		{"block at column 0, quoted", "resources:\n- \"app.yaml\"\n", "resources:\n- \"app.yaml\"\n- \"serviceaccount-default.yaml\"\n"},
		{"block, no final newline", "resources:\n- app.yaml", "resources:\n- app.yaml\n- serviceaccount-default.yaml\n"},
		{"flow", "resources: [app.yaml, db.yaml] # all\n", "resources: [app.yaml, db.yaml, serviceaccount-default.yaml] # all\n"},
		{"empty flow", "resources: []\n", "resources: [serviceaccount-default.yaml]\n"},
		{"CRLF", "resources:\r\n  - app.yaml\r\n", "resources:\r\n  - app.yaml\r\n  - serviceaccount-default.yaml\r\n"},
	} {
		src, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		root := src.Docs[0].Content[0]
		var seq *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "resources" {
				seq = root.Content[i+1]
			}
		}
		edits, err := src.AppendScalars(seq, []string{"serviceaccount-default.yaml"})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		out, err := src.Apply(edits)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(out) != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, out, tc.want)
		}
	}
}
