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
func ReadRecord(sa *corev1.ServiceAccount, keys Keys) (serviceaccount.Record, error) {
	rec, _, err := ReadRecordSigned(sa, keys)
	return rec, err
}

// ReadRecordSigned is ReadRecord, and whether the proof is the signing
// key's (false: an older key of the ring made it; it is signed again).
func ReadRecordSigned(sa *corev1.ServiceAccount, keys Keys) (serviceaccount.Record, bool, error) {
	rec, err := serviceaccount.ReadRecord(sa)
	if err != nil {
		return nil, false, err
	}
	if len(rec) == 0 {
		return rec, true, nil
	}
	valid, current := keys.check(sa.Annotations[v1alpha1.AttachedProofAnnotation], recordFields(sa.Namespace, sa.Name, sa.UID, rec)...)
	if !valid {
		return nil, false, fmt.Errorf("ServiceAccount %s/%s: annotation %s: %w", sa.Namespace, sa.Name, v1alpha1.AttachedAnnotation, ErrRecordUnproven)
	}
	return rec, current, nil
}

// WriteRecord stores the record and its proof, made with the signing key,
// on the object, dropping both annotations when the record is empty. It
// reports whether it changed anything.
func WriteRecord(sa *corev1.ServiceAccount, keys Keys, rec serviceaccount.Record) bool {
	changed := serviceaccount.WriteRecord(sa, rec)
	old, had := sa.Annotations[v1alpha1.AttachedProofAnnotation]
	if len(rec) == 0 {
		if had {
			delete(sa.Annotations, v1alpha1.AttachedProofAnnotation)
			changed = true
		}
		return changed
	}
	proof := keys.sign(recordFields(sa.Namespace, sa.Name, sa.UID, rec)...)
	if had && old == proof {
		return changed
	}
	sa.Annotations[v1alpha1.AttachedProofAnnotation] = proof
	return true
}

// CopyIsProven reports whether a Secret's marks carry a valid proof for the
// ClusterPullSecret its labels name.
func CopyIsProven(keys Keys, namespace, name string, labels, annotations map[string]string) bool {
	valid, _ := CopyProven(keys, namespace, name, labels, annotations)
	return valid
}

// CopyProven reports whether a Secret's marks carry a valid proof for the
// ClusterPullSecret its labels name, and whether the signing key made it.
func CopyProven(keys Keys, namespace, name string, labels, annotations map[string]string) (valid, current bool) {
	if labels[v1alpha1.ManagedByLabel] != v1alpha1.ManagedByValue {
		return false, false
	}
	owner := labels[v1alpha1.OwnerLabel]
	uid := annotations[v1alpha1.OwnerUIDAnnotation]
	if owner == "" || uid == "" {
		return false, false
	}
	return keys.check(annotations[v1alpha1.ProofAnnotation], copyFields(namespace, name, owner, types.UID(uid))...)
}
