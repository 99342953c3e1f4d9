package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// What is kept of a copy: identity, version, type, whether it is going,
// the copies' labels and annotations (nothing else written on it), and a
// digest of its data, never the data. The proof is not interned (unique),
// the strings copies share are.
func TestACopyRecordKeepsWhatIsRead(t *testing.T) {
	t.Parallel()
	data := map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}
	now := metav1.Now()
	secret := func(name string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: "shop", Name: name, UID: types.UID("u-" + name), ResourceVersion: "9", DeletionTimestamp: &now,
				Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "fleet", "team": "shop"},
				Annotations: map[string]string{
					v1alpha1.SourceAnnotation: "pullsecrets-system/reg", v1alpha1.ProofAnnotation: "p-" + name,
					v1alpha1.DataHashAnnotation: "h", v1alpha1.OwnerUIDAnnotation: "o",
					"kubectl.kubernetes.io/last-applied-configuration": "{}",
				},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "pullsecrets-controller"}},
			},
			Type: corev1.SecretTypeDockerConfigJson,
			Data: data,
		}
	}
	in := newInterner()
	a, b := copyRecordFrom(secret("a"), in.intern), copyRecordFrom(secret("b"), in.intern)
	want := &copyMeta{
		Namespace: "shop", Name: "a", UID: "u-a", ResourceVersion: "9", Deleting: true,
		Labels: map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "fleet"},
		Annotations: map[string]string{
			v1alpha1.SourceAnnotation: "pullsecrets-system/reg", v1alpha1.ProofAnnotation: "p-a",
			v1alpha1.DataHashAnnotation: "h", v1alpha1.OwnerUIDAnnotation: "o",
		},
		Type: corev1.SecretTypeDockerConfigJson, Digest: dataHash(corev1.SecretTypeDockerConfigJson, data),
	}
	if got := a.meta(); !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("kept:\n%+v\nwant\n%+v", got, want)
	}
	sa, _ := a.annotations.Get(v1alpha1.SourceAnnotation)
	sb, _ := b.annotations.Get(v1alpha1.SourceAnnotation)
	if !sameString(sa, sb) || !sameString(a.digest, b.digest) {
		t.Error("shared values are not one string")
	}
	if _, ok := in.m["p-a"]; ok {
		t.Error("a proof was interned")
	}
	empty := copyRecordFrom(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Type: corev1.SecretTypeDockerConfigJson}, in.intern)
	if empty.digest == a.digest {
		t.Fatal("a copy without data digests as one with data")
	}
}
