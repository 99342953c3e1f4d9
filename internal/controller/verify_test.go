package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
)

func (e *env) verifiedCondition(name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		var obj v1alpha1.ClusterPullSecret
		if err := e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &obj); err != nil {
			return &metav1.Condition{Reason: "error: " + err.Error()}
		}
		return meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionCredentialsVerified)
	}
}

// spec.verify checks the source credentials against a real registry; a
// failed check never stops propagation.
func TestVerifyChecksCredentialsWithoutBlockingPropagation(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	reg := registrytest.Start(t, registrytest.Options{
		TLS:   true,
		Auth:  registrytest.AuthHtpasswd,
		Users: []registrytest.User{{Name: "ci", Password: "right-password"}},
	})
	reg.Push(t, "shop/web", "1.0")
	src := e.source("regcred", reg.Host, "ci", "right-password")
	ns := e.namespace()
	e.startController(func(o *manager.Options) { o.Controller.VerifyRootCAs = reg.RootCAs })
	name := e.uniqueName("verify")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.Verify = &v1alpha1.VerifySpec{Image: reg.Host + "/shop/web:1.0"}
	})
	eventually(g, e.verifiedCondition(name)).Should(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", v1alpha1.ReasonVerified)))
	g.Expect(e.status(name).LastVerification).NotTo(BeNil())

	// A rotation to a wrong password: the check fails, the copy follows.
	src.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, reg.Host, "ci", "wrong-password")
	g.Expect(e.client.Update(e.ctx(), src)).To(Succeed())
	eventually(g, e.verifiedCondition(name)).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonVerificationFailed),
		HaveField("Message", ContainSubstring("rejected"))))
	eventually(g, func() []byte { return dataOf(e.secret(ns, name)()) }).Should(Equal(src.Data[corev1.DockerConfigJsonKey]))
	// The status catches up with the copies within its write pacing: Ready
	// again, with the check still failing.
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue), "verification never blocks propagation")
	g.Expect(e.verifiedCondition(name)()).To(HaveField("Status", metav1.ConditionFalse))
	g.Expect(e.verifiedCondition(name)().Message).NotTo(ContainSubstring("wrong-password"))

	// Fixed again, then a tag that does not exist.
	src.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, reg.Host, "ci", "right-password")
	g.Expect(e.client.Update(e.ctx(), src)).To(Succeed())
	eventually(g, e.verifiedCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) {
		s.Verify.Image = reg.Host + "/shop/web:9.9"
	})
	eventually(g, e.verifiedCondition(name)).Should(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Message", ContainSubstring("9.9")),
		HaveField("Message", Not(ContainSubstring("rejected")))))
}
