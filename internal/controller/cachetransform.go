package controller

import (
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// What the caches keep of each object, beyond dropping managed fields:
// every decoded object has its own copy of each label and annotation key,
// and of values that thousands of objects share (a copy's source, owner
// and data digests; a ServiceAccount's attachment record). The transforms
// below make them one string each, and drop what nothing reads of
// objects the controller never writes back (Namespaces). Measured in
// docs/benchmarks.md.

// interner hands out one copy of each string it has seen, up to a bound,
// so that a flood of distinct values cannot grow it without limit.
type interner struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

// Strings longer than internMaxLen are not interned: no shared value is
// that long, and a unique one would only cost an entry.
const (
	internMaxLen     = 128
	internMaxEntries = 4096
)

func newInterner() *interner { return &interner{m: map[string]string{}, max: internMaxEntries} }

func (in *interner) intern(s string) string {
	if len(s) > internMaxLen {
		return s
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.m[s]; ok {
		return v
	}
	if len(in.m) < in.max {
		in.m[s] = s
	}
	return s
}

// uniqueValues are annotations whose value differs on every object: not
// worth an entry.
var uniqueValues = map[string]bool{v1alpha1.ProofAnnotation: true, v1alpha1.AttachedProofAnnotation: true}

// internMap returns m with interned keys and, but for uniqueValues, values;
// nil for an empty map.
func (in *interner) internMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if !uniqueValues[k] {
			v = in.intern(v)
		}
		out[in.intern(k)] = v
	}
	return out
}

func (in *interner) meta(o metav1.Object) {
	o.SetManagedFields(nil)
	o.SetLabels(in.internMap(o.GetLabels()))
	o.SetAnnotations(in.internMap(o.GetAnnotations()))
}

// namespace is the cache's transform of a Namespace: the controller reads
// its name, labels, opt-out annotation and whether it is terminating, and
// never writes one, so the rest is dropped (other tools' annotations,
// kubectl's last-applied copy of the object, finalizers, conditions).
func (in *interner) namespace(obj any) (any, error) {
	ns, ok := obj.(*corev1.Namespace)
	if !ok {
		return obj, nil
	}
	maps.DeleteFunc(ns.Annotations, func(k, _ string) bool { return k != v1alpha1.OptOutAnnotation })
	ns.OwnerReferences, ns.Finalizers = nil, nil
	// kubernetes.io/metadata.name is the name, on every namespace (the
	// API server sets it): selection answers it from the name, and a
	// namespace with no other label keeps no map (about 300 bytes).
	if v, ok := ns.Labels[corev1.LabelMetadataName]; ok && v == ns.Name {
		delete(ns.Labels, corev1.LabelMetadataName)
	}
	in.meta(ns)
	ns.Spec = corev1.NamespaceSpec{}
	ns.Status.Conditions = nil
	return ns, nil
}
