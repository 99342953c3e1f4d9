package manifests

import (
	yaml "go.yaml.in/yaml/v3"
)

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// slot is where a key of a mapping physically is: in the mapping itself or
// in one merged into it with `<<`.
type slot struct {
	holder *yaml.Node // the mapping that holds the pair
	index  int        // index of the key in holder.Content
	key    *yaml.Node
	value  *yaml.Node // as written: may be an alias
}

// inFlow reports whether the slot's value sits in a flow mapping.
func (s slot) inFlow() bool { return s.holder.Style&yaml.FlowStyle != 0 }

// lookup finds key in mapping n, following `<<` merge keys as YAML 1.1
// (and so kubectl) does: the mapping's own keys first, then merged ones in
// order. Load refuses files whose aliases loop or expand past
// MaxAliasExpansion, so the recursion ends and its work is bounded.
func lookup(n *yaml.Node, key string) (slot, bool) {
	m := resolve(n)
	if m == nil || m.Kind != yaml.MappingNode {
		return slot{}, false
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind == yaml.ScalarNode && k.Value == key && k.ShortTag() == "!!str" {
			return slot{holder: m, index: i, key: k, value: m.Content[i+1]}, true
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!merge" {
			continue
		}
		v := resolve(m.Content[i+1])
		merged := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			merged = v.Content
		}
		for _, mm := range merged {
			if s, ok := lookup(mm, key); ok {
				return s, true
			}
		}
	}
	return slot{}, false
}

// scalar returns the string value of key in mapping n, or "".
func scalar(n *yaml.Node, key string) string {
	s, ok := lookup(n, key)
	if !ok {
		return ""
	}
	v := resolve(s.value)
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
		return ""
	}
	return v.Value
}

// isNull reports whether n is a null scalar (`~`, `null` or nothing).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// walk follows keys from mapping n and returns the mapping at the end.
func walk(n *yaml.Node, keys ...string) (*yaml.Node, bool) {
	for _, k := range keys {
		s, ok := lookup(n, k)
		if !ok {
			return nil, false
		}
		n = resolve(s.value)
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, false
	}
	return n, true
}
