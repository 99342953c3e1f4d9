package manifests

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Pull secret types: the kubelet reads only these (pkg/credentialprovider).
const (
	SecretTypeDockerConfigJSON = "kubernetes.io/dockerconfigjson"
	SecretTypeDockercfg        = "kubernetes.io/dockercfg"
)

// Rename renames the pull secret oldName to newName in every namespace:
// in Pod templates' imagePullSecrets, in ServiceAccounts' imagePullSecrets
// and secrets, and the Secret manifest itself. A list that already names
// newName loses its oldName entry instead, so no name appears twice.
//
// A namespace is left alone, with the reason, when it defines both
// Secrets, when the Secret named oldName is not a pull secret, or when a
// workload also uses it as a volume or in env: those would break.
func Rename(set *Set, errs []Finding, oldName, newName string) *Result {
	p := newPlan(set)
	byNS := map[string][]*Object{}
	var order []string
	for _, o := range set.Objects {
		if _, ok := byNS[o.Namespace]; !ok {
			order = append(order, o.Namespace)
		}
		byNS[o.Namespace] = append(byNS[o.Namespace], o)
	}
	workloads := map[*Object]*Workload{}
	for _, w := range set.Workloads {
		workloads[w.Object] = w
	}
	generated := map[string][]*Object{}
	for _, g := range set.Generated {
		if g.Name == oldName || g.Name == newName {
			generated[g.Namespace] = append(generated[g.Namespace], g)
		}
	}
	for _, ns := range order {
		if gs := generated[ns]; len(gs) > 0 {
			p.refused = append(p.refused, Finding{File: gs[0].File, Object: fmt.Sprintf("Secret %s/%s", ns, gs[0].Name),
				Message: fmt.Sprintf("namespace %s left alone: the Secret is made by this kustomization's secretGenerator; rename it there and in the references by hand", ns)})
			continue
		}
		p.renameIn(ns, byNS[ns], workloads, oldName, newName)
	}
	return p.finish(errs)
}

func (p *plan) renameIn(ns string, objs []*Object, workloads map[*Object]*Workload, oldName, newName string) {
	var oldSecrets, newSecrets []*Object
	var touched []*Object
	var problems []string
	type listEdit struct {
		o    *Object
		refs refList
		path []any
	}
	var lists []listEdit
	for _, o := range objs {
		if o.group() == "" && o.Kind == "Secret" {
			switch o.Name {
			case oldName:
				oldSecrets = append(oldSecrets, o)
				if t := scalar(o.node, "type"); t != SecretTypeDockerConfigJSON && t != SecretTypeDockercfg {
					problems = append(problems, fmt.Sprintf("Secret %s/%s (%s:%d) has type %q, not a pull secret type", ns, oldName, o.File, o.Line, t))
				}
			case newName:
				newSecrets = append(newSecrets, o)
			}
		}
		if w := workloads[o]; w != nil {
			if slices.Contains(w.PullSecrets, oldName) {
				lists = append(lists, listEdit{o, w.pull, w.podPath})
			}
			if uses := w.secretUses()[oldName]; len(uses) > 0 {
				problems = append(problems, fmt.Sprintf("%s (%s:%d) also uses it as %s", o, o.File, o.Line, strings.Join(uses, ", ")))
			}
		}
		if o.group() == "" && o.Kind == "ServiceAccount" {
			for _, key := range []string{fieldPullSecrets, "secrets"} {
				if r := readRefs(o.node, key); slices.Contains(r.names, oldName) {
					lists = append(lists, listEdit{o, r, o.path})
				}
			}
		}
	}
	if len(oldSecrets)+len(lists) == 0 {
		return
	}
	for _, l := range lists {
		touched = append(touched, l.o)
	}
	touched = append(touched, oldSecrets...)
	if len(oldSecrets) > 0 && len(newSecrets) > 0 {
		problems = append(problems, fmt.Sprintf("Secret %s/%s is defined too (%s:%d)", ns, newName, newSecrets[0].File, newSecrets[0].Line))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		for _, o := range touched {
			p.refuse(o, o.Line, "left alone: renaming %s in namespace %s would break something: %s", oldName, ns, strings.Join(problems, "; "))
		}
		return
	}
	c := p.newChange(touched...)
	for _, l := range lists {
		if err := p.renameRefs(c, l.o, l.refs, l.path, oldName, newName); err != nil {
			c.failed = fmt.Sprintf("left alone: cannot edit %s of %s: %v", l.refs.key, l.o, err)
			return
		}
	}
	for _, s := range oldSecrets {
		md, _ := lookup(s.node, "metadata")
		name, _ := lookup(md.value, "name")
		edits, err := s.file.src.ReplaceScalar(name.value, newName, name.inFlow())
		if err != nil {
			c.failed = fmt.Sprintf("left alone: cannot rename %s: %v", s, err)
			return
		}
		c.add(s.file, edits, semOp{doc: s.doc, path: append(appendPath(s.path), "metadata"), key: "name", kind: opSet, value: newName})
		c.notes = append(c.notes, s.at(name.value.Line, "renamed to %s", newName))
	}
}

// renameRefs renames oldName in one list, or drops it where newName is
// already listed.
func (p *plan) renameRefs(c *change, o *Object, refs refList, path []any, oldName, newName string) error {
	src := o.file.src
	has := slices.Contains(refs.names, newName)
	var dropped []int
	for i, n := range refs.names {
		if n != oldName {
			continue
		}
		itemPath := append(appendPath(path, refs.key), i)
		if has {
			dropped = append(dropped, i)
			edits, err := src.DeleteItem(refs.seq, i)
			if err != nil {
				return err
			}
			c.add(o.file, edits, semOp{doc: o.doc, path: appendPath(path, refs.key), key: i, kind: opDelete})
			continue
		}
		has = true
		slot := refs.items[i]
		edits, err := src.ReplaceScalar(slot.value, newName, slot.inFlow())
		if err != nil {
			return err
		}
		c.add(o.file, edits, semOp{doc: o.doc, path: itemPath, key: "name", kind: opSet, value: newName})
	}
	msg := fmt.Sprintf("%s: %s renamed to %s", refs.key, oldName, newName)
	if len(dropped) > 0 && len(dropped) == countOf(refs.names, oldName) {
		msg = fmt.Sprintf("%s: %s removed, %s is already listed", refs.key, oldName, newName)
	}
	c.notes = append(c.notes, o.at(refs.slot.key.Line, "%s", msg))
	return nil
}

func countOf(names []string, name string) int {
	n := 0
	for _, x := range names {
		if x == name {
			n++
		}
	}
	return n
}
