package controller_test

import (
	"bytes"
	"maps"
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

// A copy whose marks someone changed or removed is the controller's own
// object still (its UID): it is written back whole, data and marks, keeping
// the labels and annotations that are not marks, and its namespace is not
// Ready meanwhile.
func TestACopyWhoseMarksChangedIsRestored(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("marks")
	other := e.uniqueName("other")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	made := e.secret(ns, name)()
	want := dataOf(made)

	for _, tt := range []struct {
		what string
		edit func(s *corev1.Secret)
	}{
		{"the source named changed", func(s *corev1.Secret) { s.Annotations[v1alpha1.SourceAnnotation] = "elsewhere/other" }},
		{"the proof removed", func(s *corev1.Secret) { delete(s.Annotations, v1alpha1.ProofAnnotation) }},
		{"the proof of another copy", func(s *corev1.Secret) {
			s.Annotations[v1alpha1.ProofAnnotation] = "v1.9ewbeqTJV8BIACc9t24J9mataPlPSn0R7Esk_vB_OZA"
		}},
		{"the owner's UID changed", func(s *corev1.Secret) { s.Annotations[v1alpha1.OwnerUIDAnnotation] = "another-uid" }},
		{"claimed for another ClusterPullSecret", func(s *corev1.Secret) { s.Labels[v1alpha1.OwnerLabel] = other }},
		{"the owner label removed", func(s *corev1.Secret) { delete(s.Labels, v1alpha1.OwnerLabel) }},
		{"the managed-by label removed, with the data", func(s *corev1.Secret) {
			delete(s.Labels, v1alpha1.ManagedByLabel)
			s.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, "registry.example.com", "someone", "else")
		}},
		{"every mark removed", func(s *corev1.Secret) { s.Labels, s.Annotations = nil, nil }},
	} {
		s := e.secret(ns, name)()
		g.Expect(s.UID).To(Equal(made.UID), "%s: still the copy the controller made", tt.what)
		tt.edit(s)
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		s.Labels["team"] = "theirs" // not a mark: kept
		start := time.Now()
		g.Expect(e.client.Update(e.ctx(), s)).To(Succeed())
		g.Expect(s.Labels).To(HaveKeyWithValue("team", "theirs"), "%s: the edit was stored", tt.what)
		eventually(g, func() *corev1.Secret { return e.secret(ns, name)() }).Should(And(
			HaveField("UID", made.UID),
			WithTransform(dataOf, Equal(want)),
			HaveField("ObjectMeta.Labels", Equal(withTeam(made.Labels))),
			HaveField("ObjectMeta.Annotations", Equal(made.Annotations)),
		), "%s: restored", tt.what)
		t.Logf("%s: restored in %v", tt.what, time.Since(start))
		eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	}
}

func withTeam(labels map[string]string) map[string]string {
	out := maps.Clone(labels)
	out["team"] = "theirs"
	return out
}
