package controller

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// liveIndexes are indexes of the cluster's ServiceAccounts and copies,
// both listed, as recordIndexes runs them.
func liveIndexes(t *testing.T, c *testcluster.Cluster) *reader {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testcluster.Context(t))
	t.Cleanup(cancel)
	read := &reader{accounts: accounts.New(nil, nil), copies: newCopies(newInterner().intern, nil)}
	go func() { _ = (&recordIndexes{read: read, clientset: cs}).Start(ctx) }()
	if err := (indexesSynced{read}).WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	return read
}

// After a rotation the older keys stay while anything they signed is
// left, and go once everything is signed again.
func TestOlderKeysGoOnceNothingTheySignedIsLeft(t *testing.T) {
	c := testcluster.Get(t)
	ctx := testcluster.Context(t)
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	keyNS, ns := c.Namespace(t), c.Namespace(t)
	k1, k2 := twoKeys(t)
	ring := ownership.NewRing(k1).Rotated(k2)
	keySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: keyNS, Name: v1alpha1.OwnershipKeySecretName},
		Type: v1alpha1.OwnershipKeySecretType, Data: ring.Data()}
	if err := cl.Create(ctx, keySecret); err != nil {
		t.Fatal(err)
	}
	old := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred",
		Labels:      map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "acme"},
		Annotations: map[string]string{v1alpha1.OwnerUIDAnnotation: "uid-1", v1alpha1.ProofAnnotation: ownership.NewRing(k1).CopyProof(ns, "regcred", "acme", "uid-1")},
	}}
	if err := cl.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	metrics := newKeyMetrics(prometheus.NewRegistry())
	indexes := liveIndexes(t, c)
	k := &keyring{namespace: keyNS, live: cl, accounts: indexes.accounts, copies: indexes.copies, client: cl, metrics: &metrics, changed: func() {}, now: time.Now,
		log: logr.Discard(), interval: 200 * time.Millisecond, kick: make(chan struct{}, 1)}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = k.Start(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	older := func() int {
		var s corev1.Secret
		if err := cl.Get(ctx, types.NamespacedName{Namespace: keyNS, Name: v1alpha1.OwnershipKeySecretName}, &s); err != nil {
			return -1
		}
		r, err := ownership.RingFromSecret(&s)
		if err != nil {
			return -1
		}
		return len(r.Older())
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n := older(); n != 1 {
			t.Fatalf("%d older keys while a copy signed by one is left", n)
		}
	}
	if got, _, _ := k.state(); got == nil || !got.Has(k1) {
		t.Fatal("the ring held does not check the older key")
	}
	// Signed again, as a plan does.
	old.Annotations[v1alpha1.ProofAnnotation] = ring.CopyProof(ns, "regcred", "acme", "uid-1")
	if err := cl.Update(ctx, old); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); older() != 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the older key stayed once nothing it signed was left")
		}
	}
	if got, _, _ := k.state(); got.Has(k1) || !got.Signing().Equal(k2) {
		t.Fatal("the ring held still has the older key")
	}
}

// A standby that sees the key Secret replaced while nobody leads keeps the
// replaced key in memory, and writes it into the Secret once it leads: the
// copies that key signed stay proven.
func TestAStandbyWritesTheKeysItMergedOnceItLeads(t *testing.T) {
	c := testcluster.Get(t)
	ctx := testcluster.Context(t)
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	keyNS := c.Namespace(t)
	k1, k2 := twoKeys(t)
	ref := types.NamespacedName{Namespace: keyNS, Name: v1alpha1.OwnershipKeySecretName}
	keySecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: keyNS, Name: v1alpha1.OwnershipKeySecretName},
		Type: v1alpha1.OwnershipKeySecretType, Data: ownership.NewRing(k1).Data()}
	if err := cl.Create(ctx, keySecret); err != nil {
		t.Fatal(err)
	}
	metrics := newKeyMetrics(prometheus.NewRegistry())
	elected := make(chan struct{})
	indexes := liveIndexes(t, c)
	k := &keyring{namespace: keyNS, live: cl, accounts: indexes.accounts, copies: indexes.copies, client: cl, metrics: &metrics, changed: func() {}, now: time.Now,
		log: logr.Discard(), kick: make(chan struct{}, 1), elected: elected}
	if err := k.sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Replaced by another key (a restore of another backup) while nobody leads.
	keySecret.Data = ownership.NewRing(k2).Data()
	if err := cl.Update(ctx, keySecret); err != nil {
		t.Fatal(err)
	}
	if err := k.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := k.state(); got == nil || !got.Has(k1) || !got.Signing().Equal(k2) {
		t.Fatal("the standby does not hold both keys, the new one signing")
	}
	stored := func() *ownership.Ring {
		var s corev1.Secret
		if err := cl.Get(ctx, ref, &s); err != nil {
			t.Fatal(err)
		}
		r, err := ownership.RingFromSecret(&s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if stored().Has(k1) {
		t.Fatal("a standby wrote the key Secret")
	}

	close(elected)
	if err := k.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r := stored(); !r.Has(k1) || !r.Signing().Equal(k2) {
		t.Fatal("once leading, the keys merged as a standby are not written")
	}
	if got, _, _ := k.state(); got == nil || !got.Has(k1) {
		t.Fatal("the leader forgot the replaced key")
	}
}

func twoKeys(t *testing.T) (*ownership.Key, *ownership.Key) {
	t.Helper()
	var keys [2]*ownership.Key
	for i := range keys {
		k, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	return keys[0], keys[1]
}
