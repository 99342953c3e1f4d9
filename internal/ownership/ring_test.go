package ownership_test

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

func marks(r ownership.Keys, proof string) (map[string]string, map[string]string) {
	return map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "acme"},
		map[string]string{v1alpha1.OwnerUIDAnnotation: "uid-1", v1alpha1.ProofAnnotation: proof}
}

// A rotated ring signs with the new key and still accepts, as not
// current, what the older ones signed; a key not in the ring proves
// nothing.
func TestRingRotation(t *testing.T) {
	t.Parallel()
	k1, k2, stranger := key(t, 1), key(t, 2), key(t, 3)
	ring := ownership.NewRing(k1)
	old := ring.CopyProof("shop", "regcred", "acme", "uid-1")
	rotated := ring.Rotated(k2)
	for _, tt := range []struct {
		name           string
		keys           ownership.Keys
		proof          string
		valid, current bool
	}{
		{"the signing key's proof", rotated, rotated.CopyProof("shop", "regcred", "acme", "uid-1"), true, true},
		{"an older key's proof", rotated, old, true, false},
		{"a stranger's proof", rotated, stranger.CopyProof("shop", "regcred", "acme", "uid-1"), false, false},
		{"a bare key checks only its own", k2, old, false, false},
		{"a nil ring checks nothing", (*ownership.Ring)(nil), old, false, false},
		{"a nil key checks nothing", (*ownership.Key)(nil), old, false, false},
	} {
		labels, annotations := marks(tt.keys, tt.proof)
		valid, current := ownership.CopyProven(tt.keys, "shop", "regcred", labels, annotations)
		if valid != tt.valid || current != tt.current {
			t.Errorf("%s: valid %v current %v, want %v %v", tt.name, valid, current, tt.valid, tt.current)
		}
	}
	if (*ownership.Ring)(nil).CopyProof("shop", "regcred", "acme", "uid-1") != "" {
		t.Fatal("a nil ring signs")
	}
}

// A record signed by an older key reads as valid, not current, and writing
// it again signs it with the signing key.
func TestRecordSignedAgain(t *testing.T) {
	t.Parallel()
	k1, k2 := key(t, 1), key(t, 2)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default", UID: "sa-1"}}
	rec := serviceaccount.Record{"regcred": "acme"}
	ownership.WriteRecord(sa, ownership.NewRing(k1), rec)
	ring := ownership.NewRing(k1).Rotated(k2)
	got, current, err := ownership.ReadRecordSigned(sa, ring)
	if err != nil || current || !got.Equal(rec) {
		t.Fatalf("read %v current %v err %v", got, current, err)
	}
	if !ownership.WriteRecord(sa, ring, rec) {
		t.Fatal("writing the same record with a new signing key changed nothing")
	}
	if _, current, err := ownership.ReadRecordSigned(sa, ring); err != nil || !current {
		t.Fatalf("after writing: current %v err %v", current, err)
	}
	if _, err := ownership.ReadRecord(sa, ownership.NewRing(k1)); err == nil {
		t.Fatal("the old key alone accepts the new proof")
	}
}

// The ring round-trips through the key Secret, in order; a replaced ring
// keeps the keys it replaced; a Secret asking for recovery holds no key.
func TestRingInTheKeySecret(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := key(t, 1), key(t, 2), key(t, 3)
	ring := ownership.NewRing(k1).Rotated(k2).Rotated(k3)
	s := &corev1.Secret{Type: v1alpha1.OwnershipKeySecretType, Data: ring.Data()}
	back, err := ownership.RingFromSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Signing().Equal(k3) || len(back.Older()) != 2 || !back.Older()[0].Equal(k2) || !back.Older()[1].Equal(k1) {
		t.Fatalf("ring read back out of order")
	}
	merged := ownership.NewRing(key(t, 4)).Merged(ring)
	for _, k := range []*ownership.Key{k1, k2, k3} {
		if !merged.Has(k) {
			t.Fatal("a merged ring lost a key")
		}
	}
	if merged.Current().Has(k3) {
		t.Fatal("the current ring kept an older key")
	}
	for _, bad := range []*corev1.Secret{
		{Type: v1alpha1.OwnershipKeySecretType, Data: map[string][]byte{ownership.RecoverDataKey: []byte(ownership.RecoverAdoptMarked)}},
		{Type: corev1.SecretTypeOpaque, Data: ring.Data()},
		{Type: v1alpha1.OwnershipKeySecretType, Data: map[string][]byte{v1alpha1.OwnershipKeyDataKey: make([]byte, 32), "older.1": []byte("short")}},
	} {
		if _, err := ownership.RingFromSecret(bad); !errors.Is(err, ownership.ErrNoKey) {
			t.Errorf("%v: %v, want ErrNoKey", bad.Data, err)
		}
	}
}
