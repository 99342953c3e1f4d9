// Package accounts keeps what the controller reads of every ServiceAccount:
// its name, UID and resourceVersion, its labels, the few annotations the
// controller reads, and its list of pull secrets. A client-go reflector
// feeds it, and it keeps an Account of each ServiceAccount instead of the
// object: about a third of the memory of a cached ServiceAccount
// (docs/benchmarks.md), and nothing of what other tools write there (an
// Argo CD tracking annotation, kubectl's last-applied copy, token
// Secrets).
//
// What it hands out is a ServiceAccount holding only those fields. It is
// enough to plan and to prove ownership, never enough to send back whole:
// the controller writes ServiceAccounts with a patch of its own fields and
// the resourceVersion it read (package serviceaccount's MergePatch).
package accounts

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/nsindex"
)

// EnforceMountableSecrets is the annotation by which a ServiceAccount asks
// the API server to refuse Pods naming Secrets it does not list.
const EnforceMountableSecrets = "kubernetes.io/enforce-mountable-secrets"

// Kept are the annotations the controller reads of a ServiceAccount: its
// attachment record and proof, the opt-out, and whether its Pods may only
// name the Secrets it lists. Every other annotation is dropped.
var Kept = []string{v1alpha1.AttachedAnnotation, v1alpha1.AttachedProofAnnotation, v1alpha1.OptOutAnnotation, EnforceMountableSecrets}

// Account is what is kept of one ServiceAccount.
type Account struct {
	Namespace       string
	Name            string
	UID             types.UID
	ResourceVersion string
	Deleting        bool
	labels          nsindex.Pairs
	annotations     nsindex.Pairs
	pullSecrets     []string
}

// Intern returns one shared copy of a string; identity is a valid one.
type Intern func(string) string

func same(s string) string { return s }

// FromObject returns what is kept of sa. intern (nil: none) is given the
// label keys and values and the kept annotations' keys and values but the
// proof, which differs on every ServiceAccount.
func FromObject(sa *corev1.ServiceAccount, intern Intern) *Account {
	if intern == nil {
		intern = same
	}
	a := &Account{
		Namespace: sa.Namespace, Name: sa.Name, UID: sa.UID, ResourceVersion: sa.ResourceVersion,
		Deleting: sa.DeletionTimestamp != nil,
		labels:   nsindex.NewPairs(sa.Labels, nil, intern, ""),
		// The proof differs on every ServiceAccount: not worth an entry.
		annotations: nsindex.NewPairs(sa.Annotations, Kept, intern, v1alpha1.AttachedProofAnnotation),
	}
	if len(sa.ImagePullSecrets) > 0 {
		a.pullSecrets = make([]string, len(sa.ImagePullSecrets))
		for i, ref := range sa.ImagePullSecrets {
			a.pullSecrets[i] = intern(ref.Name)
		}
	}
	return a
}

// Annotation returns a kept annotation's value.
func (a *Account) Annotation(k string) (string, bool) { return a.annotations.Get(k) }

// Object returns a new ServiceAccount holding what is kept (labels, kept
// annotations, list). It is not to be written back whole.
func (a *Account) Object() *corev1.ServiceAccount {
	sa := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: a.Namespace, Name: a.Name, UID: a.UID, ResourceVersion: a.ResourceVersion,
			Labels: a.labels.Map(), Annotations: a.annotations.Map(),
		},
	}
	if a.Deleting {
		sa.DeletionTimestamp = &metav1.Time{}
	}
	for _, n := range a.pullSecrets {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	return sa
}

// Trim returns sa as the index keeps it: what Object gives of its Account.
func Trim(sa *corev1.ServiceAccount) *corev1.ServiceAccount { return FromObject(sa, nil).Object() }

// Key is the ServiceAccount's namespace and name.
func (a *Account) Key() (string, string) { return a.Namespace, a.Name }

// SameVersion reports whether two Accounts stand for the same version.
func (a *Account) SameVersion(b *Account) bool {
	return a.UID == b.UID && a.ResourceVersion == b.ResourceVersion
}

// ShareNamespace makes the Account hold this copy of its namespace's name.
func (a *Account) ShareNamespace(ns string) { a.Namespace = ns }
