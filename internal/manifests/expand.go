package manifests

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// MaxAliasExpansion bounds how many times its own nodes a file may stand for
// once every alias and merge key (<<) in it is expanded. The lookups here
// follow aliases and merge keys themselves (yaml.v3's guard covers only its
// own decoding), so a file past it is left out, and their work stays linear
// in the file's size. See docs/manifests.md.
const MaxAliasExpansion = 10

// expansionCap keeps counts of expanded nodes from overflowing.
const expansionCap = 1 << 40

// expansion counts the nodes of a file's documents with every alias
// expanded, visiting each node of the file once: the sizes of anchored
// nodes are kept, and an alias adds its anchor's size.
type expansion struct {
	sizes map[*yaml.Node]int
	open  map[*yaml.Node]bool
	// visits is how many nodes the count visited: each node of the file
	// once, so also how many it holds.
	visits int
	// expanded is the count with aliases expanded, up to expansionCap.
	expanded int
	// loop is the line of an alias to a node that contains it, or 0.
	loop int
}

// checkExpansion returns a finding when the documents' aliases loop or
// expand them past MaxAliasExpansion times their nodes.
func checkExpansion(path string, docs []*yaml.Node) (*Finding, *expansion) {
	e := &expansion{sizes: map[*yaml.Node]int{}, open: map[*yaml.Node]bool{}}
	for _, d := range docs {
		e.expanded = min(e.expanded+e.size(d), expansionCap)
		if e.loop > 0 {
			// yaml.v3 and kubectl refuse to decode it too.
			return &Finding{File: path, Line: e.loop, Message: "an alias refers to a node that contains it"}, e
		}
	}
	if limit := MaxAliasExpansion * e.visits; e.expanded > limit {
		return &Finding{File: path, Message: fmt.Sprintf("aliases and merge keys (<<) expand its %d YAML nodes past the limit of %d (%d times as many): the file is left out", e.visits, limit, MaxAliasExpansion)}, e
	}
	return nil, e
}

// size returns the number of nodes n stands for with aliases expanded.
func (e *expansion) size(n *yaml.Node) int {
	e.visits++
	if n.Kind == yaml.AliasNode {
		return min(1+e.aliasSize(n), expansionCap)
	}
	if n.Anchor != "" {
		e.open[n] = true
	}
	total := 1
	for _, c := range n.Content {
		total = min(total+e.size(c), expansionCap)
	}
	if n.Anchor != "" {
		delete(e.open, n)
		e.sizes[n] = total
	}
	return total
}

// aliasSize returns the size of the node an alias refers to. Anchors come
// before their aliases, so it is known by then, or still open when the
// alias is inside it.
func (e *expansion) aliasSize(n *yaml.Node) int {
	switch t := n.Alias; {
	case t == nil:
		return 0
	case e.open[t]:
		if e.loop == 0 {
			e.loop = n.Line
		}
		return 0
	default:
		return e.sizes[t]
	}
}
