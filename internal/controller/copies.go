package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/nsindex"
)

// copyRecord is what the controller keeps of a Secret wearing the copies'
// label: its identity and version, its type, a digest of its data (the
// data itself is never kept), and its marks (the copies' labels and
// annotations; nothing else written on it). About a third of a cached
// Secret's metadata (docs/benchmarks.md).
type copyRecord struct {
	namespace, name string
	uid             types.UID
	resourceVersion string
	secretType      corev1.SecretType
	// digest is dataHash of the type and data the Secret really holds.
	digest      string
	deleting    bool
	labels      nsindex.Pairs
	annotations nsindex.Pairs
}

// copyRecordFrom returns what is kept of a copy. intern is given the
// strings many copies share; the proof, which differs on every copy, is
// not.
func copyRecordFrom(s *corev1.Secret, intern func(string) string) *copyRecord {
	return &copyRecord{
		namespace: s.Namespace, name: s.Name, uid: s.UID, resourceVersion: s.ResourceVersion,
		secretType: corev1.SecretType(intern(string(s.Type))), digest: intern(dataHash(s.Type, s.Data)),
		deleting:    s.DeletionTimestamp != nil,
		labels:      nsindex.NewPairs(s.Labels, v1alpha1.CopyLabels, intern, ""),
		annotations: nsindex.NewPairs(s.Annotations, v1alpha1.CopyAnnotations, intern, v1alpha1.ProofAnnotation),
	}
}

func (r *copyRecord) Key() (string, string) { return r.namespace, r.name }

func (r *copyRecord) SameVersion(o *copyRecord) bool {
	return r.uid == o.uid && r.resourceVersion == o.resourceVersion
}

func (r *copyRecord) ShareNamespace(ns string) { r.namespace = ns }

// meta returns the copy as the planner's reader takes it, with new label
// and annotation maps.
func (r *copyRecord) meta() *copyMeta {
	return &copyMeta{
		Namespace: r.namespace, Name: r.name, UID: r.uid, ResourceVersion: r.resourceVersion,
		Labels: r.labels.Map(), Annotations: r.annotations.Map(), Type: r.secretType, Digest: r.digest, Deleting: r.deleting,
	}
}

// copies holds a record of every Secret wearing the copies' label.
type copies = nsindex.Index[*copyRecord]

// copiesSelector selects the Secrets the controller made (or someone made
// look so): the only Secrets outside the source namespaces it lists.
var copiesSelector = labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})

// newCopies returns an empty index of copies. onChange is called for every
// copy that appears, changes or goes once the index is synced.
func newCopies(intern func(string) string, onChange func(ns string, old, new *copyRecord)) *copies {
	return nsindex.New(func(obj any) (*copyRecord, error) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return nil, fmt.Errorf("copies: unexpected object %T", obj)
		}
		return copyRecordFrom(s, intern), nil
	}, onChange)
}

// copiesIn returns a namespace's copies.
func copiesIn(c *copies, ns string) ([]*copyMeta, error) {
	var out []*copyMeta
	err := c.InNamespace(ns, func(r *copyRecord) { out = append(out, r.meta()) })
	return out, err
}

// runCopies runs the index's reflector, label-selected, until ctx ends.
func runCopies(ctx context.Context, c *copies, cs kubernetes.Interface) {
	lw := cache.NewFilteredListWatchFromClient(cs.CoreV1().RESTClient(), "secrets", metav1.NamespaceAll, func(o *metav1.ListOptions) {
		o.LabelSelector = copiesSelector.String()
	})
	c.Run(ctx, "copies", lw, &corev1.Secret{})
}
