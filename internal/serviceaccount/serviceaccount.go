// Package serviceaccount edits a ServiceAccount's imagePullSecrets the only
// safe way. The list is `+listType=atomic`: every patch flavour replaces it
// whole, so adding one name means read, merge, and write back with the
// resourceVersion read (optimistic concurrency), re-reading on conflict.
// Both the controller and the kubectl plugin go through here.
package serviceaccount

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// Has reports whether the ServiceAccount lists name in imagePullSecrets.
func Has(sa *corev1.ServiceAccount, name string) bool {
	return slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
}

// Attach appends name to imagePullSecrets unless it is there already,
// keeping every other entry and their order. It reports whether it changed
// the object.
func Attach(sa *corev1.ServiceAccount, name string) bool {
	if Has(sa, name) {
		return false
	}
	sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
	return true
}

// Detach removes every entry named name, keeping the others in order. It
// reports whether it changed the object.
func Detach(sa *corev1.ServiceAccount, name string) bool {
	if !Has(sa, name) {
		return false
	}
	sa.ImagePullSecrets = slices.DeleteFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name })
	if len(sa.ImagePullSecrets) == 0 {
		sa.ImagePullSecrets = nil
	}
	return true
}

// Record is what pullsecrets attached to a ServiceAccount: secret name to
// the ClusterPullSecret that attached it. It lives in the
// v1alpha1.AttachedAnnotation annotation, so that pullsecrets only ever
// removes names it added itself.
type Record map[string]string

// ReadRecord reads the record. A missing annotation is an empty record; a
// malformed one is an error (and must not be overwritten blindly: it may be
// the only trace of what we attached).
func ReadRecord(sa *corev1.ServiceAccount) (Record, error) {
	raw, ok := sa.Annotations[v1alpha1.AttachedAnnotation]
	if !ok || raw == "" {
		return Record{}, nil
	}
	r := Record{}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("ServiceAccount %s/%s: annotation %s is not a JSON object of strings", sa.Namespace, sa.Name, v1alpha1.AttachedAnnotation)
	}
	return r, nil
}

// WriteRecord stores the record on the object, dropping the annotation when
// the record is empty. It reports whether the annotation changed.
func WriteRecord(sa *corev1.ServiceAccount, r Record) bool {
	old, had := sa.Annotations[v1alpha1.AttachedAnnotation]
	if len(r) == 0 {
		if !had {
			return false
		}
		delete(sa.Annotations, v1alpha1.AttachedAnnotation)
		return true
	}
	raw, _ := json.Marshal(map[string]string(r)) // a map of strings always marshals; keys come out sorted
	if had && old == string(raw) {
		return false
	}
	if sa.Annotations == nil {
		sa.Annotations = map[string]string{}
	}
	sa.Annotations[v1alpha1.AttachedAnnotation] = string(raw)
	return true
}

// Equal reports whether two records hold the same entries.
func (r Record) Equal(o Record) bool { return maps.Equal(r, o) }

// Store reads and writes ServiceAccounts; the controller and the plugin
// each bring their own client.
type Store interface {
	Get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error)
	Update(ctx context.Context, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error)
}

// Mutation edits a ServiceAccount in place and reports whether it changed
// anything. It may run several times, each time on a fresher object.
type Mutation func(sa *corev1.ServiceAccount) (bool, error)

// Update applies mutate and writes the result with the object's
// resourceVersion, so that a concurrent writer is never overwritten. On a
// conflict it re-reads the object and applies mutate again. current may come
// from a cache (it is not modified); when mutate changes nothing, nothing is
// written. It returns the object as stored and whether it wrote.
func Update(ctx context.Context, store Store, current *corev1.ServiceAccount, mutate Mutation) (*corev1.ServiceAccount, bool, error) {
	obj := current.DeepCopy()
	wrote := false
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if obj == nil {
			fresh, err := store.Get(ctx, current.Namespace, current.Name)
			if err != nil {
				return err
			}
			obj = fresh
		}
		changed, err := mutate(obj)
		if err != nil || !changed {
			return err
		}
		updated, err := store.Update(ctx, obj)
		if err != nil {
			obj = nil // re-read before the next attempt
			return err
		}
		obj, wrote = updated, true
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("update ServiceAccount %s/%s: %w", current.Namespace, current.Name, err)
	}
	return obj, wrote, nil
}

// ClientsetStore is a Store over a client-go clientset.
type ClientsetStore struct {
	Client kubernetes.Interface
	// DryRun, when set, is passed to every update (e.g. metav1.DryRunAll).
	DryRun []string
}

// Get reads a ServiceAccount.
func (s ClientsetStore) Get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	return s.Client.CoreV1().ServiceAccounts(namespace).Get(ctx, name, metav1.GetOptions{})
}

// Update writes a ServiceAccount with optimistic concurrency.
func (s ClientsetStore) Update(ctx context.Context, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
	return s.Client.CoreV1().ServiceAccounts(sa.Namespace).Update(ctx, sa, metav1.UpdateOptions{DryRun: s.DryRun})
}

// IsGone reports errors that mean the ServiceAccount or its namespace went
// away while we worked: not failures, just nothing left to do.
func IsGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// MergePatch returns a JSON merge patch that writes sa's imagePullSecrets
// and attachment record (with its proof) as they are in sa, on the version
// sa was read at: the patch carries sa's resourceVersion, so that the API
// server refuses it (409 Conflict) if the object changed since, exactly as
// an update would. Nothing else of the object is sent, so sa may be a
// trimmed copy (the controller's cache keeps only what it reads): every
// other field stays as stored. Only writes that change nothing but those
// fields may go through it.
func MergePatch(sa *corev1.ServiceAccount) ([]byte, error) {
	if sa.ResourceVersion == "" {
		return nil, fmt.Errorf("ServiceAccount %s/%s: a patch without a resourceVersion would not be optimistic", sa.Namespace, sa.Name)
	}
	annotations := map[string]*string{}
	for _, k := range v1alpha1.ServiceAccountAnnotations {
		if v, ok := sa.Annotations[k]; ok {
			annotations[k] = &v
		} else {
			annotations[k] = nil // removes it
		}
	}
	var list []corev1.LocalObjectReference // null removes the list
	if len(sa.ImagePullSecrets) > 0 {
		list = sa.ImagePullSecrets
	}
	return json.Marshal(map[string]any{
		"metadata":         map[string]any{"resourceVersion": sa.ResourceVersion, "annotations": annotations},
		"imagePullSecrets": list,
	})
}
