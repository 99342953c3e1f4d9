package accounts

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

func full(ns, name string) *corev1.ServiceAccount {
	now := metav1.Now()
	return &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "3", DeletionTimestamp: &now,
			Labels: map[string]string{"team": "shop"},
			Annotations: map[string]string{
				v1alpha1.AttachedAnnotation: `{"regcred":"fleet"}`, v1alpha1.AttachedProofAnnotation: "proof-" + name,
				v1alpha1.OptOutAnnotation: "false", EnforceMountableSecrets: "true",
				"kubectl.kubernetes.io/last-applied-configuration": `{"big":"object"}`, "argocd.argoproj.io/tracking-id": "app:/ServiceAccount:shop/" + name,
			},
			OwnerReferences: []metav1.OwnerReference{{Name: "o"}}, Finalizers: []string{"f"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "pullsecrets-controller"}},
		},
		Secrets:                      []corev1.ObjectReference{{Name: "token"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "other"}},
		AutomountServiceAccountToken: new(false),
	}
}

// What is kept of a ServiceAccount is what the controller reads: identity,
// version, whether it is going, labels, its own marks, the opt-out and
// enforce-mountable-secrets, and the list in its order. Nothing else.
func TestAnAccountKeepsWhatTheControllerReads(t *testing.T) {
	t.Parallel()
	got := FromObject(full("shop", "app"), nil).Object()
	want := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "app", UID: "uid-app", ResourceVersion: "3", DeletionTimestamp: &metav1.Time{},
			Labels: map[string]string{"team": "shop"},
			Annotations: map[string]string{
				v1alpha1.AttachedAnnotation: `{"regcred":"fleet"}`, v1alpha1.AttachedProofAnnotation: "proof-app",
				v1alpha1.OptOutAnnotation: "false", EnforceMountableSecrets: "true",
			},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "other"}},
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("kept:\n%+v\nwant\n%+v", got, want)
	}
	if !equality.Semantic.DeepEqual(Trim(full("shop", "app")), want) {
		t.Fatal("Trim differs from FromObject(...).Object()")
	}
	bare := FromObject(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default"}}, nil).Object()
	if bare.Labels != nil || bare.Annotations != nil || bare.ImagePullSecrets != nil || bare.DeletionTimestamp != nil {
		t.Fatalf("a bare ServiceAccount gained fields: %+v", bare)
	}
}

// Whatever the labels, annotations and list, an Account gives back the
// labels, the kept annotations and the list unchanged; strings the
// interner shares are shared, but the proof, which is unique.
func TestAccountsRoundTripRandomized(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(22, 7))
	word := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte('a' + rng.IntN(3))
		}
		return string(b)
	}
	var mu sync.Mutex
	shared := map[string]string{}
	interned := map[string]bool{}
	intern := func(s string) string {
		mu.Lock()
		defer mu.Unlock()
		interned[s] = true
		if v, ok := shared[s]; ok {
			return v
		}
		shared[s] = s
		return s
	}
	for i := range 3000 {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: word(), Name: word(), UID: types.UID(word()), ResourceVersion: fmt.Sprint(i)}}
		labels, annotations := map[string]string{}, map[string]string{}
		for range rng.IntN(4) {
			labels[word()] = word()
			annotations[word()] = word()
		}
		for _, k := range Kept {
			if rng.IntN(2) == 0 {
				annotations[k] = word()
			}
		}
		if len(labels) > 0 {
			sa.Labels = maps.Clone(labels)
		}
		if len(annotations) > 0 {
			sa.Annotations = maps.Clone(annotations)
		}
		var list []string
		for range rng.IntN(4) {
			list = append(list, word())
			sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: list[len(list)-1]})
		}
		proof := fmt.Sprintf("proof-%d", i)
		if _, ok := annotations[v1alpha1.AttachedProofAnnotation]; ok {
			sa.Annotations[v1alpha1.AttachedProofAnnotation], annotations[v1alpha1.AttachedProofAnnotation] = proof, proof
		}
		a := FromObject(sa, intern)
		got := a.Object()
		maps.DeleteFunc(annotations, func(k, _ string) bool { return !slices.Contains(Kept, k) })
		if !maps.Equal(got.Labels, labels) || !maps.Equal(got.Annotations, annotations) {
			t.Fatalf("labels %v, annotations %v -> %v, %v", labels, annotations, got.Labels, got.Annotations)
		}
		if !slices.Equal(a.PullSecrets(), list) || len(got.ImagePullSecrets) != len(list) {
			t.Fatalf("list %v -> %v", list, got.ImagePullSecrets)
		}
		if got.Name != sa.Name || got.Namespace != sa.Namespace || got.UID != sa.UID || got.ResourceVersion != sa.ResourceVersion {
			t.Fatalf("identity %v -> %v", sa.ObjectMeta, got.ObjectMeta)
		}
		for k, v := range annotations {
			if got, _ := a.Annotation(k); got != v {
				t.Fatalf("Annotation(%s) = %q, want %q", k, got, v)
			}
		}
	}
	if interned["proof-1"] || interned["proof-2"] {
		t.Fatal("a proof was interned")
	}
}

func sa(ns, name, rv string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "/" + name), ResourceVersion: rv}}
}

func names(t *testing.T, ix *Index, ns string) []string {
	t.Helper()
	sas, err := ix.InNamespace(ns)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range sas {
		out = append(out, s.Name+"@"+s.ResourceVersion)
	}
	return out
}

// The index answers nothing before its first list, then follows the
// reflector's adds, updates and deletes, and reports each namespace that
// changed (not one whose ServiceAccount came back at the same version).
func TestTheIndexFollowsItsReflector(t *testing.T) {
	t.Parallel()
	var changed []string
	ix := New(nil, func(ns string) { changed = append(changed, ns) })
	s := &store{ix: ix}
	if _, err := ix.InNamespace("shop"); err != ErrNotSynced {
		t.Fatalf("before the list: %v", err)
	}
	if err := ix.Each(func(*Account) bool { return true }); err != ErrNotSynced {
		t.Fatalf("before the list: %v", err)
	}
	// The reflector lists through Transformer, then replaces.
	var list []any
	for _, o := range []*corev1.ServiceAccount{sa("shop", "web", "1"), sa("shop", "default", "1"), sa("bank", "default", "2")} {
		a, err := s.Transformer()(o)
		if err != nil {
			t.Fatal(err)
		}
		list = append(list, a)
	}
	if err := s.Replace(list, "2"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ix.syncedCh:
	default:
		t.Fatal("not synced after the list")
	}
	if got := names(t, ix, "shop"); !slices.Equal(got, []string{"default@1", "web@1"}) {
		t.Fatalf("shop: %v", got)
	}
	if len(changed) != 0 {
		t.Fatalf("the first list reported %v", changed)
	}
	steps := []struct {
		do   func() error
		want []string // shop's ServiceAccounts after
		note []string // namespaces reported
	}{
		{func() error { return s.Add(sa("shop", "api", "3")) }, []string{"api@3", "default@1", "web@1"}, []string{"shop"}},
		{func() error { return s.Update(sa("shop", "api", "3")) }, []string{"api@3", "default@1", "web@1"}, nil},
		{func() error { return s.Update(sa("shop", "web", "4")) }, []string{"api@3", "default@1", "web@4"}, []string{"shop"}},
		{func() error { return s.Delete(sa("shop", "default", "5")) }, []string{"api@3", "web@4"}, []string{"shop"}},
		{func() error {
			return s.Delete(cache.DeletedFinalStateUnknown{Key: "shop/api", Obj: sa("shop", "api", "3")})
		}, []string{"web@4"}, []string{"shop"}},
		{func() error { return s.Delete(sa("shop", "gone", "6")) }, []string{"web@4"}, nil},
		// A relist after a watch expired: shop unchanged, bank emptied,
		// tea new.
		{func() error { return s.Replace([]any{sa("shop", "web", "4"), sa("tea", "default", "7")}, "7") }, []string{"web@4"}, []string{"bank", "tea"}},
	}
	for i, st := range steps {
		changed = nil
		if err := st.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := names(t, ix, "shop"); !slices.Equal(got, st.want) {
			t.Fatalf("step %d: shop %v, want %v", i, got, st.want)
		}
		if !slices.Equal(changed, st.note) {
			t.Fatalf("step %d: reported %v, want %v", i, changed, st.note)
		}
	}
	if _, err := ix.Get("bank", "default"); !apierrors.IsNotFound(err) {
		t.Fatalf("bank/default after the relist: %v", err)
	}
	if got, err := ix.Get("tea", "default"); err != nil || got.ResourceVersion != "7" {
		t.Fatalf("tea/default: %v, %v", got, err)
	}
	if ix.Len() != 2 {
		t.Fatalf("Len = %d", ix.Len())
	}
}

// The Accounts of one namespace share one namespace string.
func TestANamespaceIsOneString(t *testing.T) {
	t.Parallel()
	ix := New(nil, nil)
	s := &store{ix: ix}
	if err := s.Replace([]any{sa("shop", "a", "1"), sa("shop", "b", "1")}, "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(sa("shop", "c", "2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(sa("shop", "a", "3")); err != nil {
		t.Fatal(err)
	}
	var ptrs []*byte
	_ = ix.Each(func(a *Account) bool {
		ptrs = append(ptrs, unsafe.StringData(a.Namespace))
		return true
	})
	if len(ptrs) != 3 || ptrs[0] != ptrs[1] || ptrs[1] != ptrs[2] {
		t.Fatalf("namespace strings: %v", ptrs)
	}
}
