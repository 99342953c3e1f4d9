package match

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// readSecretFiles reads the Secrets of every file, in order: documents in
// file order, List items in list order, as the kubelet would get them if
// a Pod listed them so. Objects of other kinds are skipped; a file without
// a Secret is an error, since it was named to give one. Secrets without a
// namespace get namespace. Files over the limits of package readlimit are
// errors.
func readSecretFiles(paths []string, namespace string) ([]pullSecret, error) {
	budget := readlimit.New()
	sizes := make([]int64, len(paths))
	for i, path := range paths {
		if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
			sizes[i] = info.Size()
		}
	}
	var tooLarge *readlimit.TooLargeError
	if errors.As(budget.CheckTotal(paths, sizes), &tooLarge) {
		return nil, fmt.Errorf("secret files %s: %s", tooLarge.Path, tooLarge.Problem())
	}
	var out []pullSecret
	for _, path := range paths {
		data, err := budget.ReadFile(path)
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("secret file %s: %s", path, tooLarge.Problem())
		}
		if err != nil {
			return nil, fmt.Errorf("read secret file: %w", err)
		}
		secrets, err := parseSecretFile(path, data, namespace)
		if err != nil {
			return nil, err
		}
		if len(secrets) == 0 {
			return nil, fmt.Errorf("secret file %s holds no Secret", path)
		}
		out = append(out, secrets...)
	}
	return out, nil
}

// document is one YAML or JSON document of a file, as JSON.
type document struct {
	index int // 1-based
	line  int // where it starts, 1-based
	json  []byte
}

// fileError is a problem at a place in a secret file. Its problem never
// quotes the file's content, which holds secrets.
func fileError(path string, doc document, problem string, args ...any) error {
	return fmt.Errorf("secret file %s:%d (document %d): %s", path, doc.line, doc.index, fmt.Sprintf(problem, args...))
}

// parseSecretFile decodes the Secrets of one file.
func parseSecretFile(path string, data []byte, namespace string) ([]pullSecret, error) {
	docs, err := splitDocuments(path, data)
	if err != nil {
		return nil, err
	}
	var out []pullSecret
	for _, doc := range docs {
		secrets, err := objectSecrets(path, doc, doc.json, nil, namespace)
		if err != nil {
			return nil, err
		}
		out = append(out, secrets...)
	}
	return out, nil
}

// splitDocuments splits a file into documents the way kubectl does
// (apimachinery's YAML reader, or a JSON stream when the file starts with
// '{'), and converts each to JSON with sigs.k8s.io/yaml.
func splitDocuments(path string, data []byte) ([]document, error) {
	if utilyaml.IsJSONBuffer(data) {
		return splitJSON(path, data)
	}
	// The YAML reader gives each document's lines with '\n' endings; with
	// CRLF turned into LF first, each is a verbatim part of data, which
	// tells its line.
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs []document
	offset := 0
	for index := 1; ; index++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			// Its message quotes the text after the separator.
			return nil, fmt.Errorf("secret file %s: document %d: invalid YAML: a document separator (---) followed by text", path, index)
		}
		start := lineStartIndex(data, offset, raw)
		offset = start + len(raw)
		doc := document{index: index, line: bytes.Count(data[:start], []byte("\n")) + 1}
		doc.json, err = yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, yamlError(path, doc, err)
		}
		docs = append(docs, doc)
	}
}

// lineStartIndex returns where doc starts in data, at or after offset, at
// the start of a line.
func lineStartIndex(data []byte, offset int, doc []byte) int {
	for from := offset; from < len(data); {
		i := bytes.Index(data[from:], doc)
		if i < 0 {
			break
		}
		at := from + i
		if at == 0 || data[at-1] == '\n' {
			return at
		}
		from = at + 1
	}
	return offset
}

// yamlLine finds the line of a YAML syntax error, and its reason.
var yamlLine = regexp.MustCompile(`line (\d+): (.*)$`)

// quotedChar is a single quoted character, as in "did not find expected
// ',' or '}'": the only quoting a reason may keep.
var quotedChar = regexp.MustCompile(`'.'`)

// yamlError reports a YAML syntax error by line, with the parser's reason
// when it quotes nothing of the file: most reasons are fixed texts, but
// some quote a key or an anchor.
func yamlError(path string, doc document, err error) error {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return fileError(path, doc, "invalid YAML")
	}
	n, _ := strconv.Atoi(m[1])
	doc.line += n - 1
	reason := m[2]
	if strings.ContainsAny(quotedChar.ReplaceAllString(reason, ""), "\"'`%") {
		return fileError(path, doc, "invalid YAML")
	}
	return fileError(path, doc, "invalid YAML: %s", reason)
}

// splitJSON reads a stream of JSON documents, as kubectl does for a file
// that starts with '{'.
func splitJSON(path string, data []byte) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	for index := 1; ; index++ {
		start := int(dec.InputOffset())
		// The line of the document's first byte, after the whitespace
		// the decoder skips.
		first := start + len(data[start:]) - len(bytes.TrimLeft(data[start:], " \t\r\n"))
		doc := document{index: index, line: bytes.Count(data[:first], []byte("\n")) + 1}
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			// Syntax errors quote the offending character: give the line.
			if syntax, ok := errors.AsType[*json.SyntaxError](err); ok {
				doc.line = bytes.Count(data[:min(int(syntax.Offset), len(data))], []byte("\n")) + 1
			}
			return nil, fileError(path, doc, "invalid JSON")
		}
		doc.json = raw
		docs = append(docs, doc)
	}
}

// object is what a document says about itself.
type object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Items      []json.RawMessage `json:"items"`
}

// secretManifest is a Secret as written in a manifest.
type secretManifest struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Type       string            `json:"type"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
}

// objectSecrets returns the Secrets of one object: itself when it is a
// v1 Secret, its items' when it is a List. items is the object's place in
// Lists (1-based), nil for a document itself.
func objectSecrets(path string, doc document, raw []byte, items []int, namespace string) ([]pullSecret, error) {
	item := ""
	if len(items) > 0 {
		item = "item " + itemPath(items) + ": "
	}
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil // an empty document, or comments only
	}
	var obj object
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Kind == "" {
		return nil, fileError(path, doc, "%snot a Kubernetes object (no kind)", item)
	}
	if obj.APIVersion == "v1" && strings.HasSuffix(obj.Kind, "List") {
		var out []pullSecret
		for i, it := range obj.Items {
			secrets, err := objectSecrets(path, doc, it, append(slices.Clone(items), i+1), namespace)
			if err != nil {
				return nil, err
			}
			out = append(out, secrets...)
		}
		return out, nil
	}
	if obj.APIVersion != "v1" || obj.Kind != "Secret" {
		return nil, nil
	}
	var m secretManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return nil, fileError(path, doc, "%sSecret: %s is a JSON %s, want %s", item, typeErr.Field, typeErr.Value, typeErr.Type)
		}
		return nil, fileError(path, doc, "%snot a valid Secret", item)
	}
	if m.Metadata.Name == "" {
		return nil, fileError(path, doc, "%sSecret without metadata.name", item)
	}
	// The API server would refuse other names; refusing them here keeps
	// odd text out of the output.
	if errs := validation.IsDNS1123Subdomain(m.Metadata.Name); len(errs) > 0 {
		return nil, fileError(path, doc, "%sSecret name %q: %s", item, m.Metadata.Name, errs[0])
	}
	if errs := validation.IsDNS1123Label(m.Metadata.Namespace); m.Metadata.Namespace != "" && len(errs) > 0 {
		return nil, fileError(path, doc, "%sSecret namespace %q: %s", item, m.Metadata.Namespace, errs[0])
	}
	s := credentials.Secret{Namespace: m.Metadata.Namespace, Name: m.Metadata.Name, Type: m.Type, Data: map[string][]byte{}}
	if s.Namespace == "" {
		s.Namespace = namespace
	}
	// As the API server stores it: data decoded, stringData merged over it.
	for _, k := range sortedKeys(m.Data) {
		v, err := base64.StdEncoding.DecodeString(m.Data[k])
		if err != nil {
			return nil, fileError(path, doc, "%sSecret %s: data %q is not valid base64 (%v)", item, s.Ref(), k, err)
		}
		s.Data[k] = v
	}
	for k, v := range m.StringData {
		s.Data[k] = []byte(v)
	}
	from := fmt.Sprintf("%s:%d", path, doc.line)
	if len(items) > 0 {
		from += " item " + itemPath(items)
	}
	return []pullSecret{{ref: s.Ref(), secret: &s, from: from}}, nil
}

// itemPath writes List item numbers, e.g. "2" or "1.3" for an item of a
// List in a List.
func itemPath(items []int) string {
	parts := make([]string, len(items))
	for i, n := range items {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ".")
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
