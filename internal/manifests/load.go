package manifests

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pullsecrets/pullsecrets/internal/manifests/yamledit"
)

// DefaultNamespace is where objects without metadata.namespace are assumed
// to go, as `kubectl apply` without -n would put them.
const DefaultNamespace = "default"

// Options tunes how files are read.
type Options struct {
	// Namespace is the namespace of objects that set none (kubectl apply
	// -n). Empty means DefaultNamespace.
	Namespace string
	// Kustomizations are the kustomization files that list the files
	// (File.Kustomization names them): migrate adds the files it creates
	// to their resources, and scan counts the Secrets their
	// secretGenerator makes.
	Kustomizations []Kustomization
}

// Set is every object found in a group of files.
type Set struct {
	files   []*source
	Objects []*Object
	// Workloads are the objects that make Pods, with their Pod spec.
	Workloads []*Workload
	// Generated are the Secrets kustomizations' secretGenerator make: they
	// exist when built, their contents are not in the files.
	Generated []*Object
	// kustomizations by path, parsed for editing their resources.
	kustomizations map[string]*kustomization
}

// kustomization is a kustomization file, parsed to be edited.
type kustomization struct {
	Kustomization
	src *source
	// err says why it cannot be edited, when it cannot.
	err string
}

// KindSecretGenerator is the Kind of the objects of Set.Generated.
const KindSecretGenerator = "secretGenerator"

// source is a parsed file.
type source struct {
	File
	src *yamledit.Source
	// json is set for files that are JSON, so new text is JSON too.
	json bool
}

// Object is one Kubernetes object of a file: a document, or an item of a
// List.
type Object struct {
	file *source
	doc  int
	// path leads from the document root to the object, through List items.
	path []any
	node *yaml.Node

	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	// NamespaceSet is false when metadata.namespace is absent and
	// Namespace is the assumed one.
	NamespaceSet bool
	// File and Line locate the object.
	File string
	Line int
}

// String names the object as "Kind namespace/name".
func (o *Object) String() string {
	return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name)
}

func (o *Object) at(line int, msg string, args ...any) Finding {
	return Finding{File: o.File, Line: line, Object: o.String(), Message: fmt.Sprintf(msg, args...)}
}

// group returns the API group of the object's apiVersion ("" for core).
func (o *Object) group() string {
	g, _, found := strings.Cut(o.APIVersion, "/")
	if !found {
		return ""
	}
	return g
}

// Load parses files into a Set. Files that cannot be parsed, whose aliases
// expand past MaxAliasExpansion, and documents that are not Kubernetes
// objects, are reported as errors, each at file:line; the rest of the files
// still load. A file with any such error
// is left out whole, so it is never edited on a partial reading.
func Load(files []File, opts Options) (*Set, []Finding) {
	ns := opts.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	set := &Set{kustomizations: map[string]*kustomization{}}
	var errs []Finding
	for _, f := range files {
		src, err := yamledit.Parse(f.Data)
		if err != nil {
			errs = append(errs, fileError(f.Path, err))
			continue
		}
		// Before any lookup follows an alias or merge key.
		if bad, _ := checkExpansion(f.Path, src.Docs); bad != nil {
			errs = append(errs, *bad)
			continue
		}
		s := &source{File: f, src: src, json: isJSON(f.Path, src.Text())}
		var objs []*Object
		var ferrs []Finding
		for i, doc := range src.Docs {
			if len(doc.Content) == 0 {
				continue
			}
			if line, first := duplicateKey(doc, 0); line > 0 {
				// kubectl rejects these; the key is not quoted, it could be
				// anything.
				ferrs = append(ferrs, Finding{File: f.Path, Line: line, Message: fmt.Sprintf("a key is repeated (first at line %d)", first)})
				continue
			}
			o, e := s.objects(i, nil, doc.Content[0], ns)
			objs, ferrs = append(objs, o...), append(ferrs, e...)
		}
		if len(ferrs) > 0 {
			errs = append(errs, ferrs...)
			continue
		}
		set.files = append(set.files, s)
		for _, o := range objs {
			if f.Namespace != "" {
				o.Namespace = f.Namespace // kustomize's namespace: replaces metadata.namespace
			}
			set.Objects = append(set.Objects, o)
			if w := newWorkload(o); w != nil {
				set.Workloads = append(set.Workloads, w)
			}
		}
	}
	// After the manifests, so that results list files in input order.
	for _, k := range opts.Kustomizations {
		kz := &kustomization{Kustomization: k}
		set.kustomizations[k.Path] = kz
		src, err := yamledit.Parse(k.Data)
		if err != nil {
			kz.err = "it does not parse"
			continue
		}
		if bad, _ := checkExpansion(k.Path, src.Docs); bad != nil || len(src.Docs) != 1 {
			kz.err = "it is not one plain YAML document"
			continue
		}
		kz.src = &source{File: k.File, src: src}
		set.files = append(set.files, kz.src)
		for _, g := range k.SecretGenerators {
			gns := g.Namespace
			if gns == "" {
				gns = ns
			}
			set.Generated = append(set.Generated, &Object{Kind: KindSecretGenerator, Name: g.Name, Namespace: gns, NamespaceSet: g.Namespace != "", File: k.Path})
		}
	}
	return set, errs
}

func fileError(path string, err error) Finding {
	var ye *yamledit.Error
	if errors.As(err, &ye) {
		return Finding{File: path, Line: ye.Line, Message: ye.Msg}
	}
	return Finding{File: path, Message: err.Error()}
}

func isJSON(path string, text []byte) bool {
	if strings.EqualFold(filepath.Ext(path), ".json") {
		return true
	}
	t := strings.TrimLeft(string(text[:min(len(text), 64)]), " \t\r\n")
	return strings.HasPrefix(t, "{")
}

// objects returns the objects of node n, at path in document doc: n itself,
// or the items of a List.
func (s *source) objects(doc int, path []any, n *yaml.Node, ns string) ([]*Object, []Finding) {
	m := resolve(n)
	if m.Kind == yaml.ScalarNode && m.Tag == "!!null" && len(path) == 0 {
		return nil, nil // an empty document, such as Helm leaves
	}
	bad := func(msg string) []Finding {
		return []Finding{{File: s.Path, Line: n.Line, Message: msg}}
	}
	where := "document"
	if len(path) > 0 {
		where = fmt.Sprintf("List item %v", path[len(path)-1])
	}
	if m.Kind != yaml.MappingNode {
		return nil, bad(where + " is not a Kubernetes object (not a mapping)")
	}
	apiVersion, kind := scalar(m, "apiVersion"), scalar(m, "kind")
	if apiVersion == "" || kind == "" {
		return nil, bad(where + " is not a Kubernetes object (no apiVersion or kind)")
	}
	if strings.HasSuffix(kind, "List") {
		items, ok := lookup(m, "items")
		if !ok || isNull(items.value) {
			return nil, nil
		}
		seq := resolve(items.value)
		if seq.Kind != yaml.SequenceNode {
			return nil, bad(kind + ".items is not a list")
		}
		var objs []*Object
		var errs []Finding
		for i, it := range seq.Content {
			o, e := s.objects(doc, append(append(path[:len(path):len(path)], "items"), i), it, ns)
			objs, errs = append(objs, o...), append(errs, e...)
		}
		return objs, errs
	}
	o := &Object{file: s, doc: doc, path: path, node: m, APIVersion: apiVersion, Kind: kind, File: s.Path, Line: m.Line}
	if md, ok := lookup(m, "metadata"); ok {
		mm := resolve(md.value)
		o.Name = scalar(mm, "name")
		o.Namespace = scalar(mm, "namespace")
	}
	o.NamespaceSet = o.Namespace != ""
	if !o.NamespaceSet {
		o.Namespace = ns
	}
	return []*Object{o}, nil
}

// duplicateKey returns the line of the first key repeated in a mapping
// under n, and the line of its first occurrence, or 0.
func duplicateKey(n *yaml.Node, depth int) (int, int) {
	if n == nil || depth > 1000 {
		return 0, 0
	}
	if n.Kind == yaml.MappingNode {
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				continue
			}
			id := k.ShortTag() + ":" + k.Value
			if first, dup := seen[id]; dup {
				return k.Line, first
			}
			seen[id] = k.Line
		}
	}
	for _, c := range n.Content {
		if line, first := duplicateKey(c, depth+1); line > 0 {
			return line, first
		}
	}
	return 0, 0
}
