package manifests

import (
	"errors"
	"fmt"
	"reflect"
	"sort"

	yaml "go.yaml.in/yaml/v3"

	"github.com/pullsecrets/pullsecrets/internal/manifests/yamledit"
)

// plan collects changes, each of which applies whole or not at all, and
// turns them into a Result after checking every edited file.
type plan struct {
	set     *Set
	changes []*change
	refused []Finding
	created map[string]bool
}

// change is a unit of edits that keeps behaviour only as a whole, such as
// removing lists from Pod templates and adding them to their ServiceAccount.
type change struct {
	objects []*Object
	edits   map[*source][]yamledit.Edit
	ops     map[*source][]semOp
	creates []Change
	notes   []Finding
	failed  string
}

func newPlan(set *Set) *plan {
	p := &plan{set: set, created: map[string]bool{}}
	for _, f := range set.files {
		p.created[f.Path] = true // taken
	}
	return p
}

func (p *plan) newChange(objects ...*Object) *change {
	c := &change{objects: objects, edits: map[*source][]yamledit.Edit{}, ops: map[*source][]semOp{}}
	p.changes = append(p.changes, c)
	return c
}

func (c *change) add(f *source, edits []yamledit.Edit, ops ...semOp) {
	c.edits[f] = append(c.edits[f], edits...)
	c.ops[f] = append(c.ops[f], ops...)
}

// refuse records that objects were left alone, and why.
func (p *plan) refuse(o *Object, line int, format string, args ...any) {
	p.refused = append(p.refused, o.at(line, format, args...))
}

// finish applies the live changes file by file and checks each result;
// when a file fails, every change with edits in it is dropped (they span
// files, so their other files lose those edits too) and the files are
// checked again.
func (p *plan) finish(errs []Finding) *Result {
	res := &Result{Errors: errs}
	var outputs map[*source][]byte
	for {
		outputs = map[*source][]byte{}
		failed := false
		for _, f := range p.set.files {
			var edits []yamledit.Edit
			var ops []semOp
			var live []*change
			for _, c := range p.changes {
				if c.failed == "" && len(c.edits[f])+len(c.ops[f]) > 0 {
					edits, ops, live = append(edits, c.edits[f]...), append(ops, c.ops[f]...), append(live, c)
				}
			}
			if len(live) == 0 {
				continue
			}
			out, err := verify(f, edits, ops)
			if err != nil {
				for _, c := range live {
					c.failed = fmt.Sprintf("left alone: %s cannot be edited safely: %v", f.Path, err)
				}
				failed = true
				break
			}
			outputs[f] = out
		}
		if !failed {
			break
		}
	}
	for _, f := range p.set.files {
		if out, ok := outputs[f]; ok && string(out) != string(f.Data) {
			res.Changes = append(res.Changes, Change{Path: f.Path, Before: f.Data, After: out, Mode: f.Mode})
		}
	}
	res.Refused = append(res.Refused, p.refused...)
	for _, c := range p.changes {
		if c.failed != "" {
			for _, o := range c.objects {
				res.Refused = append(res.Refused, o.at(o.Line, "%s", c.failed))
			}
			continue
		}
		res.Changes = append(res.Changes, c.creates...)
		res.Notes = append(res.Notes, c.notes...)
	}
	return res
}

// opKind is what a semOp does to the decoded document.
type opKind int

const (
	opDelete opKind = iota // remove key (or item index) from the container
	opSet                  // set key (or index) to value
	opAppend               // append value's items to the list at key, creating it
)

// semOp is the intended meaning of an edit, applied to the decoded
// document to predict what the edited text must decode to.
type semOp struct {
	doc   int
	path  []any // from the document root to the container
	key   any   // string key, or int index
	kind  opKind
	value any
}

// verify applies edits to f and checks that the new text parses and
// decodes to the old document with ops applied, and to nothing else.
func verify(f *source, edits []yamledit.Edit, ops []semOp) ([]byte, error) {
	out, err := f.src.Apply(edits)
	if err != nil {
		return nil, err
	}
	after, err := yamledit.Parse(out)
	if err != nil {
		return nil, errors.New("the edited text would not parse (an alias would lose its anchor?)")
	}
	if len(after.Docs) != len(f.src.Docs) {
		return nil, errors.New("the edit would change the number of documents")
	}
	// Deletions of list items go last and from the back, so indexes hold.
	sort.SliceStable(ops, func(i, j int) bool {
		a, b := ops[i], ops[j]
		if (a.kind == opDelete) != (b.kind == opDelete) {
			return b.kind == opDelete
		}
		ai, aok := a.key.(int)
		bi, bok := b.key.(int)
		return aok && bok && a.kind == opDelete && ai > bi
	})
	for i := range f.src.Docs {
		var want, got any
		if err := f.src.Docs[i].Decode(&want); err != nil {
			return nil, fmt.Errorf("document %d does not decode", i+1)
		}
		if err := after.Docs[i].Decode(&got); err != nil {
			return nil, fmt.Errorf("edited document %d would not decode", i+1)
		}
		for _, op := range ops {
			if op.doc != i {
				continue
			}
			if want, err = applyOp(want, op.path, op); err != nil {
				return nil, err
			}
		}
		if !reflect.DeepEqual(want, got) {
			return nil, fmt.Errorf("document %d would change in more than the intended fields (YAML anchors, aliases or merge keys shared with other objects?)", i+1)
		}
	}
	return out, nil
}

// applyOp applies op at path below v and returns the new v.
func applyOp(v any, path []any, op semOp) (any, error) {
	if len(path) > 0 {
		child, err := getChild(v, path[0])
		if err != nil {
			return nil, err
		}
		child, err = applyOp(child, path[1:], op)
		if err != nil {
			return nil, err
		}
		return setChild(v, path[0], child)
	}
	switch op.kind {
	case opDelete:
		if i, ok := op.key.(int); ok {
			l, ok := v.([]any)
			if !ok || i < 0 || i >= len(l) {
				return nil, errors.New("no such list item")
			}
			return append(l[:i:i], l[i+1:]...), nil
		}
		switch m := v.(type) {
		case map[string]any:
			delete(m, op.key.(string))
			return m, nil
		case map[any]any:
			delete(m, op.key)
			return m, nil
		}
		return nil, errors.New("not a mapping")
	case opSet:
		return setChild(v, op.key, op.value)
	default: // opAppend
		cur, _ := getChild(v, op.key)
		l, _ := cur.([]any)
		return setChild(v, op.key, append(l[:len(l):len(l)], op.value.([]any)...))
	}
}

func getChild(v any, key any) (any, error) {
	switch c := v.(type) {
	case map[string]any:
		if k, ok := key.(string); ok {
			return c[k], nil
		}
	case map[any]any:
		return c[key], nil
	case []any:
		if i, ok := key.(int); ok && i >= 0 && i < len(c) {
			return c[i], nil
		}
	}
	return nil, errors.New("path not found in the decoded document")
}

func setChild(v any, key any, child any) (any, error) {
	switch c := v.(type) {
	case map[string]any:
		if k, ok := key.(string); ok {
			c[k] = child
			return c, nil
		}
	case map[any]any:
		c[key] = child
		return c, nil
	case []any:
		if i, ok := key.(int); ok && i >= 0 && i < len(c) {
			c[i] = child
			return c, nil
		}
	case nil:
		if k, ok := key.(string); ok {
			return map[string]any{k: child}, nil
		}
	}
	return nil, errors.New("path not found in the decoded document")
}

// refMaps returns names as decoded `{name: x}` references.
func refMaps(names []string) []any {
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = map[string]any{"name": n}
	}
	return out
}

// docRoot returns the root node of the object's document.
func (o *Object) docRoot() *yaml.Node {
	return o.file.src.Docs[o.doc]
}
