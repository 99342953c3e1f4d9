package controller_test

import (
	"bytes"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// A copy whose data someone changed, keeping its marks, is restored from
// the source at once, and its namespace is not Ready while it holds
// another credential.
func TestEditedCopyIsRestored(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("drift")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	want := dataOf(e.secret(ns, name)())

	for i, edit := range []func(s *corev1.Secret){
		func(s *corev1.Secret) {
			s.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, "registry.example.com", "someone", "else")
		},
		func(s *corev1.Secret) {
			s.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, "other.example.com", "ci", "pw")
			s.Annotations[v1alpha1.DataHashAnnotation] = "sha256-forged"
		},
	} {
		copy := e.secret(ns, name)()
		edit(copy)
		start := time.Now()
		g.Expect(e.client.Update(e.ctx(), copy)).To(Succeed())
		// The server's answer proves the edit was stored (the controller
		// may restore the copy before a second read could see it).
		g.Expect(bytes.Equal(dataOf(copy), want)).To(BeFalse(), "the edit %d was made", i)
		eventually(g, func() []byte { return dataOf(e.secret(ns, name)()) }).Should(Equal(want))
		t.Logf("edit %d: copy restored in %v", i, time.Since(start))
		g.Expect(e.secret(ns, name)().Annotations[v1alpha1.DataHashAnnotation]).NotTo(Equal("sha256-forged"))
	}
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
}
