package ownership

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// ErrRecordUnproven means a ServiceAccount's attachment record was not written
// by the controller (or was changed since).
var ErrRecordUnproven = errors.New("the attachment record was not written by pullsecrets (no valid proof)")

// ReadRecord reads a ServiceAccount's attachment record and checks its
// proof. No record is an empty record; a malformed or unproven one is an
// error, and the ServiceAccount must then be left alone.
func ReadRecord(sa *corev1.ServiceAccount, key *Key) (serviceaccount.Record, error) {
	rec, err := serviceaccount.ReadRecord(sa)
	if err != nil {
		return nil, err
	}
	if len(rec) == 0 {
		return rec, nil
	}
	if !key.VerifyRecord(sa.Namespace, sa.Name, sa.UID, rec, sa.Annotations[v1alpha1.AttachedProofAnnotation]) {
		return nil, fmt.Errorf("ServiceAccount %s/%s: annotation %s: %w", sa.Namespace, sa.Name, v1alpha1.AttachedAnnotation, ErrRecordUnproven)
	}
	return rec, nil
}

// WriteRecord stores the record and its proof on the object, dropping both
// annotations when the record is empty. It reports whether it changed
// anything.
func WriteRecord(sa *corev1.ServiceAccount, key *Key, rec serviceaccount.Record) bool {
	changed := serviceaccount.WriteRecord(sa, rec)
	old, had := sa.Annotations[v1alpha1.AttachedProofAnnotation]
	if len(rec) == 0 {
		if had {
			delete(sa.Annotations, v1alpha1.AttachedProofAnnotation)
			changed = true
		}
		return changed
	}
	proof := key.RecordProof(sa.Namespace, sa.Name, sa.UID, rec)
	if had && old == proof {
		return changed
	}
	sa.Annotations[v1alpha1.AttachedProofAnnotation] = proof
	return true
}

// CopyIsProven reports whether a Secret's marks carry a valid proof for the
// ClusterPullSecret its labels name.
func CopyIsProven(key *Key, namespace, name string, labels, annotations map[string]string) bool {
	if labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue {
		return false
	}
	owner := labels[v1alpha1.OwnerLabel]
	uid := annotations[v1alpha1.OwnerUIDAnnotation]
	if owner == "" || uid == "" {
		return false
	}
	return key.VerifyCopy(namespace, name, owner, types.UID(uid), annotations[v1alpha1.ProofAnnotation])
}
