package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cache's transform of a copy keeps the digest of the data it drops,
// however often it is applied (the informer may apply it again to an
// object it transformed, which made every copy look edited after a
// restart), and an annotation someone writes on a copy is never taken for
// a digest.
func TestDigestCopy(t *testing.T) {
	t.Parallel()
	data := map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}
	want := dataHash(corev1.SecretTypeDockerConfigJson, data)
	s := &corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: data}
	for i := range 3 {
		out, err := digestCopy(s)
		if err != nil {
			t.Fatal(err)
		}
		s = out.(*corev1.Secret)
		if got := copyMetaFrom(s).Digest; got != want || s.Data != nil {
			t.Fatalf("after %d transforms: digest %s, want %s; data %v", i+1, got, want, s.Data)
		}
	}
	forged := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{observedDigestKey: want}},
		Type:       corev1.SecretTypeDockerConfigJson,
	}
	if got := copyMetaFrom(forged).Digest; got == want {
		t.Fatal("an annotation written on an empty copy is taken for the digest of its credential")
	}
	out, _ := digestCopy(forged)
	if got := copyMetaFrom(out.(*corev1.Secret)).Digest; got == want {
		t.Fatal("the transform trusts a written annotation")
	}
}
