package manifests

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/pullsecrets/pullsecrets/internal/manifests/yamledit"
)

// EnforceMountableSecretsAnnotation makes the ServiceAccount admission
// plugin reject Pods whose pull secrets are not all on the ServiceAccount
// (plugin/pkg/admission/serviceaccount).
const EnforceMountableSecretsAnnotation = "kubernetes.io/enforce-mountable-secrets"

// MigrateOptions tunes Migrate.
type MigrateOptions struct {
	// Exists reports whether a path exists outside the loaded files, so a
	// new ServiceAccount file never overwrites one. Nil: only loaded files
	// count.
	Exists func(path string) bool
}

// saKey identifies a ServiceAccount.
type saKey struct{ namespace, name string }

// Migrate moves every workload's inline imagePullSecrets onto the
// ServiceAccount its Pods run as, in the same namespace.
//
// The ServiceAccount admission plugin copies the ServiceAccount's list into
// a Pod only when the Pod has none, so after the move a workload's Pods get
// the ServiceAccount's whole list. That keeps their pull secrets when every
// workload on the ServiceAccount carried the same list, and only adds names
// when the lists differ or the ServiceAccount already had some: the merge is
// reported. Workloads on a ServiceAccount annotated with
// kubernetes.io/enforce-mountable-secrets, on one defined more than once,
// or with a list that is not a list of names are refused, with the reason.
// The ServiceAccount's list is atomic: existing entries keep their order,
// new ones are appended, none twice. When the ServiceAccount's manifest is
// not among the files, a new file is created next to the first workload.
func Migrate(set *Set, errs []Finding, opts MigrateOptions) *Result {
	p := newPlan(set)
	sas := map[saKey][]*Object{}
	for _, o := range set.Objects {
		if o.group() == "" && o.Kind == "ServiceAccount" {
			k := saKey{o.Namespace, o.Name}
			sas[k] = append(sas[k], o)
		}
	}
	var order []saKey
	groups := map[saKey][]*Workload{}
	for _, w := range set.Workloads {
		k := saKey{w.Namespace, w.ServiceAccount}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], w)
	}
	for _, k := range order {
		p.migrateGroup(k, groups[k], sas[k], opts)
	}
	return p.finish(errs)
}

func (p *plan) migrateGroup(k saKey, ws []*Workload, sas []*Object, opts MigrateOptions) {
	saName := fmt.Sprintf("ServiceAccount %s/%s", k.namespace, k.name)
	var movers, others []*Workload
	for _, w := range ws {
		switch {
		case w.pull.err != "":
			p.refuse(w.Object, w.pull.slot.key.Line, "left alone: %s", w.pull.err)
		case len(w.PullSecrets) > 0:
			movers = append(movers, w)
		default:
			others = append(others, w)
		}
	}
	if len(movers) == 0 {
		return
	}
	refuseAll := func(format string, args ...any) {
		for _, w := range movers {
			p.refuse(w.Object, w.pull.slot.key.Line, format, args...)
		}
	}
	for _, w := range ws {
		if k := p.set.kustomizations[w.file.Kustomization]; k != nil && len(k.PullSecretPatches) > 0 {
			refuseAll("left alone: %s, which lists %s, has %s that may set imagePullSecrets or serviceAccountName when kustomize builds: a list put back on a Pod template hides the ServiceAccount's; move them by hand, or migrate the output of 'kustomize build'",
				k.Path, w.File, strings.Join(k.PullSecretPatches, ", "))
			return
		}
	}
	if len(sas) > 1 {
		var where []string
		for _, sa := range sas {
			where = append(where, fmt.Sprintf("%s:%d", sa.File, sa.Line))
		}
		refuseAll("left alone: %s is defined more than once (%s)", saName, strings.Join(where, ", "))
		return
	}
	var sa *Object
	var saRefs refList
	if len(sas) == 1 {
		sa = sas[0]
		if v := annotation(sa, EnforceMountableSecretsAnnotation); v != "" {
			if enforce, _ := strconv.ParseBool(v); enforce {
				refuseAll("left alone: %s has %s: %q, so its imagePullSecrets also limit which pull secrets Pods may name; widening that is a decision for a person", saName, EnforceMountableSecretsAnnotation, v)
				return
			}
		}
		saRefs = readRefs(sa.node, fieldPullSecrets)
		if saRefs.err != "" {
			refuseAll("left alone: %s (%s:%d): %s", saName, sa.File, sa.Line, saRefs.err)
			return
		}
	}

	objects := make([]*Object, 0, len(movers)+1)
	for _, w := range movers {
		objects = append(objects, w.Object)
	}
	if sa != nil {
		objects = append(objects, sa)
	}
	c := p.newChange(objects...)

	// Remove the lists first: a workload whose list cannot be removed
	// keeps it, and its names do not go onto the ServiceAccount.
	union := slices.Clone(saRefs.names)
	var moved []*Workload
	for _, w := range movers {
		edits, err := w.file.src.DeleteEntry(w.pull.slot.holder, w.pull.slot.index)
		if err != nil {
			p.refuse(w.Object, w.pull.slot.key.Line, "left alone: cannot remove imagePullSecrets here: %v", err)
			continue
		}
		c.add(w.file, edits, semOp{doc: w.doc, path: w.podPath, key: fieldPullSecrets, kind: opDelete})
		moved = append(moved, w)
		for _, n := range w.PullSecrets {
			if !slices.Contains(union, n) {
				union = append(union, n)
			}
		}
	}
	if len(moved) == 0 {
		c.failed = "left alone"
		c.objects = nil
		return
	}
	added := without(union, saRefs.names)

	var target string
	switch {
	case sa == nil && !validName(k):
		c.failed = fmt.Sprintf("left alone: %s is not among the files, and its name is not valid for a file of its own", saName)
		return
	case sa == nil:
		path, ok := p.newFilePath(moved[0], k, opts)
		if !ok {
			c.failed = fmt.Sprintf("left alone: %s is not among the files and %s already exists; pass that file too", saName, path)
			return
		}
		if kz := p.set.kustomizations[moved[0].file.Kustomization]; kz != nil {
			if err := p.listInKustomization(c, kz, path); err != nil {
				c.failed = fmt.Sprintf("left alone: %s is not among the files, and %s, which lists %s, cannot list a new file for it: %v", saName, kz.Path, moved[0].File, err)
				return
			}
			c.notes = append(c.notes, Finding{File: kz.Path, Message: "resources: " + resourcePath(kz.Path, path) + " added, so that kustomize builds the new ServiceAccount"})
		}
		c.creates = append(c.creates, newServiceAccountFile(path, moved[0], k.name, union))
		p.created[path] = true
		target = "new file " + path
		ns := "namespace " + k.namespace
		if !moved[0].NamespaceSet {
			ns = "no namespace, like the workload's (" + k.namespace + " assumed)"
		}
		c.notes = append(c.notes, Finding{File: path, Object: saName,
			Message: fmt.Sprintf("not among the files: created with %s and imagePullSecrets %s; applying it replaces the list this ServiceAccount has in the cluster (the list is atomic)", ns, list(union))})
	case len(added) == 0:
		target = fmt.Sprintf("%s:%d", sa.File, sa.Line)
		c.notes = append(c.notes, sa.at(sa.Line, "already lists %s", list(union)))
	default:
		edits, err := p.addRefs(sa, saRefs, added)
		if err != nil {
			c.failed = fmt.Sprintf("left alone: cannot add to the imagePullSecrets of %s at %s:%d: %v", saName, sa.File, sa.Line, err)
			return
		}
		c.add(sa.file, edits, semOp{doc: sa.doc, path: sa.path, key: fieldPullSecrets, kind: opAppend, value: refMaps(added)})
		target = fmt.Sprintf("%s:%d", sa.File, sa.Line)
		c.notes = append(c.notes, sa.at(sa.Line, "imagePullSecrets gets %s, now %s", list(added), list(union)))
	}

	for _, w := range moved {
		msg := fmt.Sprintf("imagePullSecrets %s moved to %s (%s)", list(w.PullSecrets), saName, target)
		if w.ServiceAccountField == "" {
			msg += "; the Pods run as it because they name no ServiceAccount"
		}
		if extra := without(union, w.PullSecrets); len(extra) > 0 {
			msg += fmt.Sprintf("; merged: its Pods will also get %s", list(extra))
		}
		c.notes = append(c.notes, w.at(w.pull.slot.key.Line, "%s", msg))
	}
	for _, w := range others {
		switch {
		case sa == nil:
			c.notes = append(c.notes, w.at(w.Line, "has no imagePullSecrets of its own: its Pods will get %s from the new ServiceAccount manifest, instead of the list the ServiceAccount has in the cluster", list(union)))
		case len(added) > 0:
			c.notes = append(c.notes, w.at(w.Line, "has no imagePullSecrets of its own: its Pods will also get %s from %s", list(added), saName))
		}
	}
}

// addRefs adds names to the ServiceAccount's imagePullSecrets, creating the
// key when it is absent or null.
func (p *plan) addRefs(sa *Object, refs refList, names []string) ([]yamledit.Edit, error) {
	src := sa.file.src
	switch {
	case !refs.present:
		return src.AddNameList(sa.docRoot(), sa.node, fieldPullSecrets, names)
	case refs.seq == nil:
		return src.SetNullList(sa.docRoot(), refs.slot.holder, refs.slot.index, names)
	default:
		return src.AppendNames(refs.seq, names, sa.file.json)
	}
}

// newFilePath picks where a new ServiceAccount manifest goes: next to the
// first workload, as serviceaccount-NAME.yaml, or with the namespace in the
// name when that is taken (two namespaces' default ServiceAccounts in one
// folder). It never picks an existing file.
func (p *plan) newFilePath(w *Workload, k saKey, opts MigrateOptions) (string, bool) {
	ext := ".yaml"
	if w.file.json {
		ext = ".json"
	}
	dir := filepath.Dir(w.File)
	first := filepath.Join(dir, "serviceaccount-"+k.name+ext)
	for _, path := range []string{first, filepath.Join(dir, "serviceaccount-"+k.namespace+"-"+k.name+ext)} {
		if !p.created[path] && (opts.Exists == nil || !opts.Exists(path)) {
			return path, true
		}
	}
	return first, false
}

// newServiceAccountFile renders a ServiceAccount manifest in the workload
// file's format and line endings. It carries a namespace only when the
// workload does, so both go to the same place when applied.
func newServiceAccountFile(path string, w *Workload, name string, names []string) Change {
	nl := w.file.src.Newline
	ns := ""
	if w.NamespaceSet {
		ns = w.Namespace
	}
	var text string
	if w.file.json {
		type meta struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace,omitempty"`
		}
		type ref struct {
			Name string `json:"name"`
		}
		refs := make([]ref, len(names))
		for i, n := range names {
			refs[i] = ref{n}
		}
		b, _ := json.MarshalIndent(struct { // fixed types: cannot fail
			APIVersion       string `json:"apiVersion"`
			Kind             string `json:"kind"`
			Metadata         meta   `json:"metadata"`
			ImagePullSecrets []ref  `json:"imagePullSecrets"`
		}{"v1", "ServiceAccount", meta{name, ns}, refs}, "", "  ")
		text = strings.ReplaceAll(string(b), "\n", nl) + nl
	} else {
		lines := []string{
			"# Created by `kubectl pullsecrets manifests migrate`: the imagePullSecrets",
			"# below moved here from the Pod templates that run as this ServiceAccount.",
			"apiVersion: v1",
			"kind: ServiceAccount",
			"metadata:",
			"  name: " + quote(name),
		}
		if ns != "" {
			lines = append(lines, "  namespace: "+quote(ns))
		}
		lines = append(lines, "imagePullSecrets:")
		dash := strings.Repeat(" ", w.file.src.SeqIndent(w.docRoot()))
		for _, n := range names {
			lines = append(lines, dash+"- name: "+quote(n))
		}
		text = strings.Join(lines, nl) + nl
	}
	return Change{Path: path, After: []byte(text), Mode: w.file.Mode, Created: true}
}

// quote writes a plain YAML scalar, quoted when it must be.
func quote(s string) string { return yamledit.RenderScalar(s) }

// annotation returns the value of an annotation of o.
func annotation(o *Object, key string) string {
	md, ok := walk(o.node, "metadata", "annotations")
	if !ok {
		return ""
	}
	return scalar(md, key)
}

// validName reports whether the ServiceAccount's namespace and name are
// valid, so they are safe in a file name (no "/" or "..").
func validName(k saKey) bool {
	return len(validation.IsDNS1123Label(k.namespace)) == 0 && len(validation.IsDNS1123Subdomain(k.name)) == 0
}

// without returns the names in a that are not in b.
func without(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

// list renders names as [a, b].
func list(names []string) string { return "[" + strings.Join(names, ", ") + "]" }

// listInKustomization adds a file created next to the files of kz to its
// resources, keeping everything else of it as written.
func (p *plan) listInKustomization(c *change, kz *kustomization, path string) error {
	if kz.err != "" {
		return errors.New(kz.err)
	}
	root := kz.src.src.Docs[0].Content[0]
	res, ok := lookup(root, "resources")
	if !ok || isNull(res.value) || resolve(res.value).Kind != yaml.SequenceNode {
		return errors.New("it has no resources: list")
	}
	entry := resourcePath(kz.Path, path)
	edits, err := kz.src.src.AppendScalars(resolve(res.value), []string{entry})
	if err != nil {
		return err
	}
	c.add(kz.src, edits, semOp{doc: 0, path: nil, key: "resources", kind: opAppend, value: []any{entry}})
	return nil
}

// resourcePath is path as a kustomization at kpath lists it: relative to
// its folder, with slashes.
func resourcePath(kpath, path string) string {
	rel, err := filepath.Rel(filepath.Dir(kpath), path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}
