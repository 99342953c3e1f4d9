// Package selection decides which namespaces and ServiceAccounts a
// ClusterPullSecret applies to. It is pure: objects in, booleans out.
package selection

import (
	"fmt"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// systemNamespaces are never selected unless named exactly in include:
// pushing a registry credential into them is rarely intended and a mistake
// there touches every cluster component.
var systemNamespaces = []string{"kube-system", "kube-public", "kube-node-lease"}

// Selector is a compiled NamespaceSelector + ServiceAccountSelector.
type Selector struct {
	nsLabels labels.Selector
	include  []string
	exclude  []string
	saNames  []string
	saLabels labels.Selector
}

// New compiles the selectors of a ClusterPullSecret spec. Errors name the
// bad field.
func New(spec *v1alpha1.ClusterPullSecretSpec) (*Selector, error) {
	s := &Selector{
		include: spec.Namespaces.Include,
		exclude: spec.Namespaces.Exclude,
		saNames: spec.ServiceAccounts.Names,
	}
	var err error
	if s.nsLabels, err = labelSelector(spec.Namespaces.Selector); err != nil {
		return nil, fmt.Errorf("spec.namespaces.selector: %w", err)
	}
	if s.saLabels, err = labelSelector(spec.ServiceAccounts.Selector); err != nil {
		return nil, fmt.Errorf("spec.serviceAccounts.selector: %w", err)
	}
	for field, globs := range map[string][]string{
		"spec.namespaces.include": s.include, "spec.namespaces.exclude": s.exclude, "spec.serviceAccounts.names": s.saNames,
	} {
		for _, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("%s: bad glob %q: %w", field, g, err)
			}
		}
	}
	return s, nil
}

func labelSelector(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// Namespace reports whether the namespace is selected. Terminating
// namespaces are never selected: nothing can be created in them.
func (s *Selector) Namespace(ns *corev1.Namespace) bool {
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		return false
	}
	return s.NamespaceMeta(ns.Name, ns.Labels, ns.Annotations)
}

// NamespaceMeta reports whether a live namespace with this name, labels
// and annotations is selected.
func (s *Selector) NamespaceMeta(name string, lbls, annotations map[string]string) bool {
	if OptedOut(annotations) {
		return false
	}
	if slices.Contains(systemNamespaces, name) && !slices.Contains(s.include, name) {
		return false
	}
	if len(s.include) > 0 && !matchAny(s.include, name) {
		return false
	}
	if matchAny(s.exclude, name) {
		return false
	}
	return s.nsLabels.Matches(namespaceLabels{name: name, set: lbls})
}

// namespaceLabels are a namespace's labels with kubernetes.io/metadata.name
// set to its name, as the API server sets it on every namespace: a
// selector on it matches whether or not the labels given carry it (the
// controller's cache drops it, so that most namespaces keep no label map).
type namespaceLabels struct {
	name string
	set  labels.Set
}

func (l namespaceLabels) Has(k string) bool { return k == corev1.LabelMetadataName || l.set.Has(k) }

func (l namespaceLabels) Get(k string) string {
	v, _ := l.Lookup(k)
	return v
}

func (l namespaceLabels) Lookup(k string) (string, bool) {
	if k == corev1.LabelMetadataName {
		return l.name, true
	}
	v, ok := l.set[k]
	return v, ok
}

// ServiceAccount reports whether the ServiceAccount is selected (its
// namespace is checked separately).
func (s *Selector) ServiceAccount(sa *corev1.ServiceAccount) bool {
	return s.ServiceAccountMeta(sa.Name, sa.Labels, sa.Annotations)
}

// ServiceAccountMeta reports whether a ServiceAccount with this name,
// labels and annotations is selected.
func (s *Selector) ServiceAccountMeta(name string, lbls, annotations map[string]string) bool {
	if OptedOut(annotations) {
		return false
	}
	if len(s.saNames) > 0 && !matchAny(s.saNames, name) {
		return false
	}
	return s.saLabels.Matches(labels.Set(lbls))
}

// OptedOut reports whether an object carries the opt-out annotation.
func OptedOut(annotations map[string]string) bool {
	return annotations[v1alpha1.OptOutAnnotation] == "true"
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok { // globs were checked in New
			return true
		}
	}
	return false
}
