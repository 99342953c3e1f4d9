package accounts

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
		var gotList []string
		for _, ref := range got.ImagePullSecrets {
			gotList = append(gotList, ref.Name)
		}
		if !slices.Equal(gotList, list) {
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
