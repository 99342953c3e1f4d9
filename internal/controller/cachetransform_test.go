package controller

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
)

func sameString(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// A cached Namespace keeps what the controller reads of it (name, labels,
// the opt-out annotation, terminating or not) and nothing else, and its
// label keys and shared values are one string (ServiceAccounts: package
// accounts; copies: TestACopyRecordKeepsWhatIsRead).
func TestCachedNamespacesKeepWhatIsReadAndShareStrings(t *testing.T) {
	t.Parallel()
	in := newInterner()
	now := metav1.Now()
	ns := func(name string) *corev1.Namespace {
		return &corev1.Namespace{
			ObjectMeta: metav1.ObjectMeta{
				Name: name, UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
				Labels:      map[string]string{corev1.LabelMetadataName: name, "team": "shop"},
				Annotations: map[string]string{v1alpha1.OptOutAnnotation: "true", "kubectl.kubernetes.io/last-applied-configuration": `{"kind":"Namespace"}`, "argocd.argoproj.io/tracking-id": "x"},
				Finalizers:  []string{"example.com/keep"}, OwnerReferences: []metav1.OwnerReference{{Name: "o"}},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			},
			Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
			Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating, Conditions: []corev1.NamespaceCondition{{Type: "NamespaceDeletionContentFailure"}}},
		}
	}
	got1, _ := in.namespace(ns("shop-1"))
	got2, _ := in.namespace(ns("shop-2"))
	a, b := got1.(*corev1.Namespace), got2.(*corev1.Namespace)
	want := &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{
			Name: "shop-1", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
			Labels:      map[string]string{"team": "shop"},
			Annotations: map[string]string{v1alpha1.OptOutAnnotation: "true"},
		},
		Status: corev1.NamespaceStatus{Phase: corev1.NamespaceTerminating},
	}
	if !equality.Semantic.DeepEqual(a, want) {
		t.Fatalf("Namespace:\n%+v\nwant\n%+v", a, want)
	}
	if !sameString(a.Labels["team"], b.Labels["team"]) {
		t.Error("Namespace label values not shared")
	}
	// The name label is the API server's; selection answers it from the
	// name. A namespace with no other label keeps no map.
	got3, _ := in.namespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank", Labels: map[string]string{corev1.LabelMetadataName: "bank"}}})
	if l := got3.(*corev1.Namespace).Labels; l != nil {
		t.Errorf("labels kept: %v", l)
	}
	// A name label that is not the name (no API server sets one) is kept.
	got4, _ := in.namespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bank", Labels: map[string]string{corev1.LabelMetadataName: "other"}}})
	if l := got4.(*corev1.Namespace).Labels; l[corev1.LabelMetadataName] != "other" {
		t.Errorf("a name label that differs from the name was dropped: %v", l)
	}
}

// Whatever the labels and annotations, a Namespace comes out of the cache
// with the same labels and opt-out: interning changes where strings live,
// never what they say. The interner stays bounded.
func TestInterningNeverChangesContent(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(22, 1))
	in := newInterner()
	word := func() string {
		n := rng.IntN(200)
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('a' + rng.IntN(3))
		}
		return string(b)
	}
	for i := range 5000 {
		m := map[string]string{}
		for range rng.IntN(6) {
			m[word()] = word()
		}
		if rng.IntN(2) == 0 {
			m[v1alpha1.AttachedProofAnnotation] = fmt.Sprint(i)
		}
		delete(m, corev1.LabelMetadataName)
		if rng.IntN(2) == 0 {
			m[v1alpha1.OptOutAnnotation] = word()
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(i), Labels: maps.Clone(m), Annotations: maps.Clone(m)}}
		got, _ := in.namespace(ns)
		g := got.(*corev1.Namespace)
		kept := maps.Clone(m)
		maps.DeleteFunc(kept, func(k, _ string) bool { return k != v1alpha1.OptOutAnnotation })
		if !maps.Equal(g.Labels, m) && len(m) > 0 || !maps.Equal(g.Annotations, kept) && len(kept) > 0 {
			t.Fatalf("content changed: %v -> %v / %v", m, g.Labels, g.Annotations)
		}
	}
	if len(in.m) > internMaxEntries {
		t.Fatalf("interner grew to %d entries", len(in.m))
	}
}

// fleetAccount is the fleet benchmark's ServiceAccount of namespace i, as
// the controller's attachment leaves it.
func fleetAccount(i int) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("fleet-%05d", i), Name: "app-1", UID: types.UID(fmt.Sprintf("4f1c2a3e-0000-4000-8000-%012d", i)), ResourceVersion: fmt.Sprint(100000 + i),
			Annotations: map[string]string{v1alpha1.AttachedAnnotation: `{"regcred":"fleet"}`, v1alpha1.AttachedProofAnnotation: fmt.Sprintf("%064d", i)},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
	}
}

// fleetCopy is the fleet benchmark's copy in namespace i.
func fleetCopy(i int) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("fleet-%05d", i), Name: "regcred", UID: types.UID(fmt.Sprintf("6f1c2a3e-0000-4000-8000-%012d", i)), ResourceVersion: fmt.Sprint(300000 + i),
			Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "fleet"},
			Annotations: map[string]string{
				v1alpha1.SourceAnnotation: "pullsecrets-system/registry-credentials", v1alpha1.DataHashAnnotation: "sha256-" + fmt.Sprintf("%064d", 7),
				v1alpha1.OwnerUIDAnnotation: "7f1c2a3e-0000-4000-8000-000000000001", v1alpha1.ProofAnnotation: fmt.Sprintf("%064d", i),
			},
		},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"Zm9vOmJhcg=="}}}`)},
	}
}

// BenchmarkCachedBytes reports what the cache keeps per object decoded
// from protobuf, as the informers decode them: a ServiceAccount carrying
// an attachment, a Namespace and a copy, with the transforms and with
// managed fields dropped only.
func BenchmarkCachedBytes(b *testing.B) {
	const n = 10000
	objs := func(i int) []any {
		ns := fmt.Sprintf("fleet-%05d", i)
		return []any{
			fleetAccount(i),
			&corev1.Namespace{
				ObjectMeta: metav1.ObjectMeta{
					Name: ns, UID: types.UID(fmt.Sprintf("5f1c2a3e-0000-4000-8000-%012d", i)), ResourceVersion: fmt.Sprint(200000 + i),
					Labels: map[string]string{corev1.LabelMetadataName: ns, "bench.pullsecrets.dev/fleet": "true"},
				},
				Spec:   corev1.NamespaceSpec{Finalizers: []corev1.FinalizerName{corev1.FinalizerKubernetes}},
				Status: corev1.NamespaceStatus{Phase: corev1.NamespaceActive},
			},
			fleetCopy(i),
		}
	}
	var raw [][]byte
	for i := range n {
		for _, o := range objs(i) {
			data, err := o.(interface{ Marshal() ([]byte, error) }).Marshal()
			if err != nil {
				b.Fatal(err)
			}
			raw = append(raw, data)
		}
	}
	decode := func(i int, data []byte) any {
		var o interface{ Unmarshal([]byte) error }
		switch i % 3 {
		case 0:
			o = &corev1.ServiceAccount{}
		case 1:
			o = &corev1.Namespace{}
		default:
			o = &corev1.Secret{}
		}
		if err := o.Unmarshal(data); err != nil {
			b.Fatal(err)
		}
		return o
	}
	for _, c := range []struct {
		name string
		tr   func() [3]func(any) (any, error)
	}{
		{"managed fields dropped", func() [3]func(any) (any, error) {
			metadata := func(o any) (any, error) {
				s := o.(*corev1.Secret)
				s.ManagedFields, s.Data = nil, nil
				return s, nil
			}
			return [3]func(any) (any, error){stripManagedFields, stripManagedFields, metadata}
		}},
		{"transforms", func() [3]func(any) (any, error) {
			in := newInterner()
			account := func(o any) (any, error) { return accounts.FromObject(o.(*corev1.ServiceAccount), in.intern), nil }
			copy := func(o any) (any, error) { return copyRecordFrom(o.(*corev1.Secret), in.intern), nil }
			return [3]func(any) (any, error){account, in.namespace, copy}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				tr := c.tr()
				kept := make([]any, 0, len(raw))
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for i, data := range raw {
					o, _ := tr[i%3](decode(i, data))
					kept = append(kept, o)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(kept)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/namespace")
			}
		})
	}
}
