package ownership

import (
	"crypto/hmac"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// Keys proves and checks marks: a Key, or a Ring of them. A nil one proves
// nothing and checks nothing.
type Keys interface {
	sign(fields ...string) string
	// check reports whether proof is valid under one of the keys, and
	// whether under the one that signs.
	check(proof string, fields ...string) (valid, current bool)
}

func (k *Key) check(proof string, fields ...string) (bool, bool) {
	ok := k != nil && k.verify(proof, fields...)
	return ok, ok
}

// Ring is the ownership keys: one signs every new proof; older ones still
// check the proofs they made until everything is signed again (a
// rotation, or a key that replaced the one in use).
type Ring struct {
	signing *Key
	older   []*Key
}

// NewRing returns a ring that signs with signing and also accepts proofs of
// older.
func NewRing(signing *Key, older ...*Key) *Ring {
	return &Ring{signing: signing, older: slices.Clone(older)}
}

// Signing is the key that signs.
func (r *Ring) Signing() *Key {
	if r == nil {
		return nil
	}
	return r.signing
}

// Older are the keys kept for checking.
func (r *Ring) Older() []*Key {
	if r == nil {
		return nil
	}
	return slices.Clone(r.older)
}

// Has reports whether k is one of the ring's keys.
func (r *Ring) Has(k *Key) bool {
	if r == nil || k == nil {
		return false
	}
	return slices.ContainsFunc(append([]*Key{r.signing}, r.older...), k.Equal)
}

// Equal reports whether two keys are the same bytes.
func (k *Key) Equal(o *Key) bool {
	return k != nil && o != nil && hmac.Equal(k.secret, o.secret)
}

func (r *Ring) sign(fields ...string) string {
	if r == nil || r.signing == nil {
		return ""
	}
	return r.signing.sign(fields...)
}

func (r *Ring) check(proof string, fields ...string) (bool, bool) {
	if r == nil || r.signing == nil {
		return false, false
	}
	if r.signing.verify(proof, fields...) {
		return true, true
	}
	for _, k := range r.older {
		if k.verify(proof, fields...) {
			return true, false
		}
	}
	return false, false
}

// CopyProof proves that the Secret namespace/name is a copy made for the
// ClusterPullSecret cps with that UID, with the signing key.
func (r *Ring) CopyProof(namespace, name, cps string, cpsUID types.UID) string {
	return r.sign(copyFields(namespace, name, cps, cpsUID)...)
}

// The key Secret (v1alpha1.OwnershipKeySecretName) holds the ring: the
// signing key under v1alpha1.OwnershipKeyDataKey, the older ones under
// olderPrefix + n. An operator who lost the key asks for a new one with
// RecoverDataKey (no key yet), and for a rotation with RotateAnnotation.
const (
	olderPrefix = "older."
	// RecoverDataKey, in a key Secret without a key, asks the controller
	// to make one and adopt the copies marked for live
	// ClusterPullSecrets (RecoverAdoptMarked).
	RecoverDataKey = "recover"
	// RecoverAdoptMarked is the only value of RecoverDataKey.
	RecoverAdoptMarked = "adopt-marked"
	// RotateAnnotation, set to a new value, asks for a new signing key.
	RotateAnnotation = "pullsecrets.dev/rotate"
	// RotatedAnnotation is the value of RotateAnnotation last acted upon.
	RotatedAnnotation = "pullsecrets.dev/rotated"
	// AdoptMarkedUntilAnnotation: until then (RFC 3339), copies marked for
	// a live ClusterPullSecret at its current name are adopted whatever
	// they hold (a recovery the operator asked for).
	AdoptMarkedUntilAnnotation = "pullsecrets.dev/adopt-marked-until"
)

// RingFromSecret reads the ring of a key Secret. ErrNoKey wraps why there
// is none (a Secret with only RecoverDataKey has none).
func RingFromSecret(s *corev1.Secret) (*Ring, error) {
	if s.Type != v1alpha1.OwnershipKeySecretType {
		return nil, fmt.Errorf("ownership key Secret %s/%s has type %q, want %q: %w", s.Namespace, s.Name, s.Type, v1alpha1.OwnershipKeySecretType, ErrNoKey)
	}
	signing, err := NewKey(s.Data[v1alpha1.OwnershipKeyDataKey])
	if err != nil {
		return nil, fmt.Errorf("ownership key Secret %s/%s: %s: %w", s.Namespace, s.Name, v1alpha1.OwnershipKeyDataKey, ErrNoKey)
	}
	var names []string
	for name := range s.Data {
		if strings.HasPrefix(name, olderPrefix) {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return olderIndex(a) - olderIndex(b) })
	r := &Ring{signing: signing}
	for _, name := range names {
		k, err := NewKey(s.Data[name])
		if err != nil {
			return nil, fmt.Errorf("ownership key Secret %s/%s: %s: %w", s.Namespace, s.Name, name, ErrNoKey)
		}
		r.older = append(r.older, k)
	}
	return r, nil
}

func olderIndex(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, olderPrefix))
	return n
}

// Data is the ring as a key Secret's data.
func (r *Ring) Data() map[string][]byte {
	out := map[string][]byte{v1alpha1.OwnershipKeyDataKey: slices.Clone(r.signing.secret)}
	for i, k := range r.older {
		out[olderPrefix+strconv.Itoa(i+1)] = slices.Clone(k.secret)
	}
	return out
}

// Rotated returns a ring signing with next, keeping every key of r for
// checking, the latest first.
func (r *Ring) Rotated(next *Key) *Ring {
	return &Ring{signing: next, older: append([]*Key{r.signing}, r.older...)}
}

// Merged returns r, keeping also the keys of old it lacks for checking:
// a key Secret replaced under a running controller loses no key.
func (r *Ring) Merged(old *Ring) *Ring {
	out := &Ring{signing: r.signing, older: slices.Clone(r.older)}
	for _, k := range append([]*Key{old.Signing()}, old.Older()...) {
		if k != nil && !out.Has(k) {
			out.older = append(out.older, k)
		}
	}
	return out
}

// Current returns the ring without its older keys, once nothing they
// signed is left.
func (r *Ring) Current() *Ring { return &Ring{signing: r.signing} }
