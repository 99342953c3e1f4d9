package accounts

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// BenchmarkAccountBytes reports the heap one ServiceAccount costs as the
// reflector decodes it (protobuf) and keeps it: the object without its
// managed fields (what the manager's cache kept before), and its Account.
// The fleet benchmark's ServiceAccounts: a name, a UID, one pull secret,
// the attachment record (shared) and its proof (unique).
func BenchmarkAccountBytes(b *testing.B) {
	const n = 10000
	raw := make([][]byte, 0, n)
	for i := range n {
		sa := &corev1.ServiceAccount{
			ObjectMeta: metav1.ObjectMeta{
				Namespace: fmt.Sprintf("fleet-%05d", i/3), Name: []string{"default", "builder", "deployer"}[i%3],
				UID: types.UID(fmt.Sprintf("5a8e4b8c-2f0e-4d6a-9a51-%012d", i)), ResourceVersion: fmt.Sprint(100000 + i),
				CreationTimestamp: metav1.Now(),
				Annotations: map[string]string{
					v1alpha1.AttachedAnnotation:      `{"regcred":"fleet"}`,
					v1alpha1.AttachedProofAnnotation: fmt.Sprintf("v1.k1.%043d", i),
				},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "pullsecrets-controller", Operation: metav1.ManagedFieldsOperationUpdate}},
			},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}},
		}
		data, err := sa.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, data)
	}
	shared := map[string]string{}
	intern := func(s string) string {
		if v, ok := shared[s]; ok {
			return v
		}
		shared[s] = s
		return s
	}
	for _, c := range []struct {
		name string
		keep func(*corev1.ServiceAccount) any
	}{
		{"object without managed fields", func(sa *corev1.ServiceAccount) any { sa.ManagedFields = nil; return sa }},
		{"account", func(sa *corev1.ServiceAccount) any { return FromObject(sa, intern) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				kept := make([]any, 0, n)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for _, data := range raw {
					var sa corev1.ServiceAccount
					if err := sa.Unmarshal(data); err != nil {
						b.Fatal(err)
					}
					kept = append(kept, c.keep(&sa))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				runtime.KeepAlive(kept)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/ServiceAccount")
			}
		})
	}
}
