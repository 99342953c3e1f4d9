package manifests

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Kinds that make Pods, with the path from the object to its Pod spec, by
// API group. Kinds of other groups (a CRD called Job, say) are not
// workloads: their schema is theirs.
var podSpecPaths = map[string]map[string][]string{
	"": {
		"Pod":                   {"spec"},
		"ReplicationController": {"spec", "template", "spec"},
		"PodTemplate":           {"template", "spec"},
	},
	"apps": {
		"Deployment":  {"spec", "template", "spec"},
		"StatefulSet": {"spec", "template", "spec"},
		"DaemonSet":   {"spec", "template", "spec"},
		"ReplicaSet":  {"spec", "template", "spec"},
	},
	"extensions": {
		"Deployment": {"spec", "template", "spec"},
		"DaemonSet":  {"spec", "template", "spec"},
		"ReplicaSet": {"spec", "template", "spec"},
	},
	"batch": {
		"Job":     {"spec", "template", "spec"},
		"CronJob": {"spec", "jobTemplate", "spec", "template", "spec"},
	},
}

// Field names, as the API spells them.
const (
	fieldPullSecrets      = "imagePullSecrets"
	fieldSAName           = "serviceAccountName"
	fieldSADeprecated     = "serviceAccount"
	defaultServiceAccount = "default"
)

// Workload is an object that makes Pods, read from its Pod spec (or Pod
// template's spec).
type Workload struct {
	*Object
	podSpec *yaml.Node
	podPath []any

	// ServiceAccount is the name the Pods run as: serviceAccountName, else
	// the deprecated serviceAccount (pkg/apis/core/v1 conversion), else
	// "default" (ServiceAccount admission).
	ServiceAccount string
	// ServiceAccountField is the field ServiceAccount came from, "" when
	// defaulted.
	ServiceAccountField string
	// PullSecrets are the names in the Pod spec's imagePullSecrets.
	PullSecrets []string
	pull        refList
	// Images are the containers' images, init and ephemeral ones included.
	Images []Image
}

// Image is one container's image.
type Image struct {
	Container string `json:"container"`
	Image     string `json:"image"`
	Line      int    `json:"line"`
}

func newWorkload(o *Object) *Workload {
	keys, ok := podSpecPaths[o.group()][o.Kind]
	if !ok {
		return nil
	}
	spec, ok := walk(o.node, keys...)
	if !ok {
		return nil
	}
	w := &Workload{Object: o, podSpec: spec, podPath: appendPath(o.path, keys...)}
	w.ServiceAccount, w.ServiceAccountField = defaultServiceAccount, ""
	for _, f := range []string{fieldSAName, fieldSADeprecated} {
		if name := scalar(spec, f); name != "" {
			w.ServiceAccount, w.ServiceAccountField = name, f
			break
		}
	}
	w.pull = readRefs(spec, fieldPullSecrets)
	w.PullSecrets = w.pull.names
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		forItems(spec, field, func(c *yaml.Node) {
			if img, ok := lookup(c, "image"); ok {
				w.Images = append(w.Images, Image{Container: scalar(c, "name"), Image: resolve(img.value).Value, Line: img.value.Line})
			}
		})
	}
	return w
}

func appendPath(path []any, keys ...string) []any {
	out := append([]any(nil), path...)
	for _, k := range keys {
		out = append(out, k)
	}
	return out
}

// forItems calls fn with each mapping item of the list at key of m.
func forItems(m *yaml.Node, key string, fn func(*yaml.Node)) {
	s, ok := lookup(m, key)
	if !ok {
		return
	}
	seq := resolve(s.value)
	if seq.Kind != yaml.SequenceNode {
		return
	}
	for _, it := range seq.Content {
		if it := resolve(it); it.Kind == yaml.MappingNode {
			fn(it)
		}
	}
}

// refList is a list of `{name: x}` references (LocalObjectReference) under a
// key: imagePullSecrets, or a ServiceAccount's secrets.
type refList struct {
	key     string
	slot    slot
	present bool
	seq     *yaml.Node // nil when the value is null
	names   []string
	items   []slot // the name slot of each item
	err     string
}

func readRefs(m *yaml.Node, key string) refList {
	r := refList{key: key}
	s, ok := lookup(m, key)
	if !ok {
		return r
	}
	r.slot, r.present = s, true
	if isNull(s.value) {
		return r
	}
	seq := resolve(s.value)
	if seq.Kind != yaml.SequenceNode {
		r.err = fmt.Sprintf("%s is not a list", key)
		return r
	}
	r.seq = seq
	for i, it := range seq.Content {
		ns, ok := lookup(it, "name")
		v := resolve(ns.value)
		if !ok || v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" || v.Value == "" {
			r.err = fmt.Sprintf("%s[%d] has no name", key, i)
			return r
		}
		r.names = append(r.names, v.Value)
		r.items = append(r.items, ns)
	}
	return r
}

// secretUses lists where the Pod spec uses a Secret other than to pull
// images: volumes, projected volumes, env and envFrom.
func (w *Workload) secretUses() map[string][]string {
	uses := map[string][]string{}
	add := func(name, where string) {
		if name != "" {
			uses[name] = append(uses[name], where)
		}
	}
	forItems(w.podSpec, "volumes", func(v *yaml.Node) {
		if sec, ok := walk(v, "secret"); ok {
			add(scalar(sec, "secretName"), "volume "+scalar(v, "name"))
		}
		if proj, ok := walk(v, "projected"); ok {
			forItems(proj, "sources", func(src *yaml.Node) {
				if sec, ok := walk(src, "secret"); ok {
					add(scalar(sec, "name"), "projected volume "+scalar(v, "name"))
				}
			})
		}
	})
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		forItems(w.podSpec, field, func(c *yaml.Node) {
			forItems(c, "env", func(e *yaml.Node) {
				if ref, ok := walk(e, "valueFrom", "secretKeyRef"); ok {
					add(scalar(ref, "name"), "env of container "+scalar(c, "name"))
				}
			})
			forItems(c, "envFrom", func(e *yaml.Node) {
				if ref, ok := walk(e, "secretRef"); ok {
					add(scalar(ref, "name"), "envFrom of container "+scalar(c, "name"))
				}
			})
		})
	}
	return uses
}
