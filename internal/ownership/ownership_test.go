package ownership_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

func key(t *testing.T, seed byte) *ownership.Key {
	t.Helper()
	b := make([]byte, ownership.KeySize)
	for i := range b {
		b[i] = seed + byte(i)
	}
	k, err := ownership.NewKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestNewKeyRefusesShortKeys(t *testing.T) {
	t.Parallel()
	if _, err := ownership.NewKey(make([]byte, ownership.KeySize-1)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}

func TestCopyProofBindsEveryField(t *testing.T) {
	t.Parallel()
	k := key(t, 1)
	proof := k.CopyProof("shop", "regcred", "acme", "uid-1")
	if !k.VerifyCopy("shop", "regcred", "acme", "uid-1", proof) {
		t.Fatal("a fresh proof does not verify")
	}
	tests := []struct {
		name                string
		ns, secret, cps, id string
		proof               string
	}{
		{"other namespace", "shop2", "regcred", "acme", "uid-1", proof},
		{"other name", "shop", "regcred2", "acme", "uid-1", proof},
		{"other owner", "shop", "regcred", "acme2", "uid-1", proof},
		{"other owner incarnation", "shop", "regcred", "acme", "uid-2", proof},
		{"fields shifted across the separator", "shopr", "egcred", "acme", "uid-1", proof},
		{"empty proof", "shop", "regcred", "acme", "uid-1", ""},
		{"no version", "shop", "regcred", "acme", "uid-1", strings.TrimPrefix(proof, "v1.")},
		{"not base64", "shop", "regcred", "acme", "uid-1", "v1.!!!"},
		{"another key's proof", "shop", "regcred", "acme", "uid-1", key(t, 2).CopyProof("shop", "regcred", "acme", "uid-1")},
	}
	for _, tt := range tests {
		if k.VerifyCopy(tt.ns, tt.secret, tt.cps, types.UID(tt.id), tt.proof) {
			t.Errorf("%s: verified", tt.name)
		}
	}
}

// Any one-character change of any field or of the proof fails, for random
// fields.
func TestProofsRandomized(t *testing.T) {
	t.Parallel()
	k := key(t, 7)
	r := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, 1+r.IntN(12))
		for i := range b {
			b[i] = "ab-.0/:"[r.IntN(7)]
		}
		return string(b)
	}
	mutate := func(s string) string {
		b := []byte(s)
		i := r.IntN(len(b))
		b[i] ^= 1 + byte(r.IntN(3))
		return string(b)
	}
	for range 5000 {
		f := []string{word(), word(), word(), word()}
		proof := k.CopyProof(f[0], f[1], f[2], types.UID(f[3]))
		if !k.VerifyCopy(f[0], f[1], f[2], types.UID(f[3]), proof) {
			t.Fatalf("proof of %q does not verify", f)
		}
		g := append([]string(nil), f...)
		i := r.IntN(4)
		g[i] = mutate(g[i])
		if k.VerifyCopy(g[0], g[1], g[2], types.UID(g[3]), proof) {
			t.Fatalf("proof of %q verifies %q", f, g)
		}
		if k.VerifyCopy(f[0], f[1], f[2], types.UID(f[3]), mutate(proof)) {
			t.Fatalf("a changed proof verifies for %q", f)
		}
	}
}

func sa(uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default", UID: types.UID(uid)}}
}

func TestRecordRoundTripAndTampering(t *testing.T) {
	t.Parallel()
	k := key(t, 3)
	obj := sa("sa-1")
	rec := serviceaccount.Record{"regcred": "acme", "other": "beta"}
	if !ownership.WriteRecord(obj, k, rec) {
		t.Fatal("writing a record changed nothing")
	}
	if ownership.WriteRecord(obj, k, rec) {
		t.Fatal("writing the same record again changed something")
	}
	got, err := ownership.ReadRecord(obj, k)
	if err != nil || !got.Equal(rec) {
		t.Fatalf("read back %v, %v", got, err)
	}

	tests := []struct {
		name   string
		mutate func(*corev1.ServiceAccount)
	}{
		{"an entry added by hand", func(s *corev1.ServiceAccount) {
			s.Annotations[v1alpha1.AttachedAnnotation] = `{"other":"beta","regcred":"acme","theirs":"acme"}`
		}},
		{"an owner changed", func(s *corev1.ServiceAccount) {
			s.Annotations[v1alpha1.AttachedAnnotation] = `{"other":"acme","regcred":"acme"}`
		}},
		{"the proof removed", func(s *corev1.ServiceAccount) { delete(s.Annotations, v1alpha1.AttachedProofAnnotation) }},
		{"copied onto a recreated ServiceAccount", func(s *corev1.ServiceAccount) { s.UID = "sa-2" }},
		{"copied onto another ServiceAccount", func(s *corev1.ServiceAccount) { s.Name = "builder" }},
	}
	for _, tt := range tests {
		c := obj.DeepCopy()
		tt.mutate(c)
		if _, err := ownership.ReadRecord(c, k); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}

	// An empty record drops both annotations; no record reads as empty.
	if !ownership.WriteRecord(obj, k, serviceaccount.Record{}) {
		t.Fatal("emptying the record changed nothing")
	}
	if len(obj.Annotations) != 0 {
		t.Fatalf("annotations left: %v", obj.Annotations)
	}
	if got, err := ownership.ReadRecord(obj, k); err != nil || len(got) != 0 {
		t.Fatalf("empty record: %v, %v", got, err)
	}
}

func TestCopyIsProven(t *testing.T) {
	t.Parallel()
	k := key(t, 5)
	labels := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "acme"}
	annotations := map[string]string{
		v1alpha1.OwnerUIDAnnotation: "uid-1",
		v1alpha1.ProofAnnotation:    k.CopyProof("shop", "regcred", "acme", "uid-1"),
	}
	if !ownership.CopyIsProven(k, "shop", "regcred", labels, annotations) {
		t.Fatal("a genuine copy is not proven")
	}
	forged := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "beta"}
	if ownership.CopyIsProven(k, "shop", "regcred", forged, annotations) {
		t.Fatal("a copy relabelled to another owner is proven")
	}
	if ownership.CopyIsProven(k, "shop", "regcred", labels, map[string]string{v1alpha1.OwnerUIDAnnotation: "uid-1"}) {
		t.Fatal("a copy without a proof is proven")
	}
	if ownership.CopyIsProven(k, "shop", "other", labels, annotations) {
		t.Fatal("a proof copied onto another Secret is proven")
	}
}
