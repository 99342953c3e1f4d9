// Package ownership proves which Secrets and ServiceAccount records the
// controller made. Labels and annotations can be set by anyone who may write
// the object, so they only say who claims to own it; the proof is an HMAC,
// under a key only the controller reads, of what the claim is about. A
// tenant can copy a proof but not make one for another name, owner or
// ServiceAccount.
package ownership

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"

	"k8s.io/apimachinery/pkg/types"
)

// KeySize is the size of a generated key, and the least size accepted.
const KeySize = 32

// proofVersion prefixes every proof so that the scheme can change later.
const proofVersion = "v1."

// Key signs and verifies proofs.
type Key struct {
	secret []byte
}

// NewKey wraps key bytes; they must be at least KeySize long.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) < KeySize {
		return nil, fmt.Errorf("ownership key: %d bytes, need at least %d", len(secret), KeySize)
	}
	return &Key{secret: slices.Clone(secret)}, nil
}

// GenerateKey returns KeySize random bytes.
func GenerateKey() ([]byte, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate ownership key: %w", err)
	}
	return b, nil
}

// CopyProof proves that the Secret namespace/name is a copy made for the
// ClusterPullSecret cps with that UID.
func (k *Key) CopyProof(namespace, name, cps string, cpsUID types.UID) string {
	return k.sign(copyFields(namespace, name, cps, cpsUID)...)
}

// VerifyCopy reports whether proof is CopyProof of the same fields.
func (k *Key) VerifyCopy(namespace, name, cps string, cpsUID types.UID, proof string) bool {
	return k.verify(proof, copyFields(namespace, name, cps, cpsUID)...)
}

// RecordProof proves that the controller wrote record (attached name to
// ClusterPullSecret) on the ServiceAccount namespace/name with that UID.
func (k *Key) RecordProof(namespace, name string, uid types.UID, record map[string]string) string {
	return k.sign(recordFields(namespace, name, uid, record)...)
}

// VerifyRecord reports whether proof is RecordProof of the same fields.
func (k *Key) VerifyRecord(namespace, name string, uid types.UID, record map[string]string, proof string) bool {
	return k.verify(proof, recordFields(namespace, name, uid, record)...)
}

func copyFields(namespace, name, cps string, cpsUID types.UID) []string {
	return []string{"copy", namespace, name, cps, string(cpsUID)}
}

func recordFields(namespace, name string, uid types.UID, record map[string]string) []string {
	return append([]string{"record", namespace, name, string(uid)}, canonical(record)...)
}

// canonical lists a record's entries in a fixed order.
func canonical(record map[string]string) []string {
	out := make([]string, 0, 2*len(record))
	for _, name := range slices.Sorted(maps.Keys(record)) {
		out = append(out, name, record[name])
	}
	return out
}

func (k *Key) mac(fields ...string) []byte {
	h := hmac.New(sha256.New, k.secret)
	for _, f := range fields {
		// Length-prefixed, so that no two field lists encode alike.
		fmt.Fprintf(h, "%d:%s", len(f), f)
	}
	return h.Sum(nil)
}

func (k *Key) sign(fields ...string) string {
	if k == nil {
		return ""
	}
	return proofVersion + base64.RawURLEncoding.EncodeToString(k.mac(fields...))
}

func (k *Key) verify(proof string, fields ...string) bool {
	// Compare encoded forms: a decoder would accept other spellings of the
	// same bytes.
	return hmac.Equal([]byte(proof), []byte(k.sign(fields...)))
}

// ErrNoKey is returned when the key Secret holds no usable key.
var ErrNoKey = errors.New("no usable ownership key")
