package controller_test

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
)

// copyCredential is "user:password" of the copy's credential for
// registry.example.com, as the kubelet reads it.
func (e *env) copyCredential(ns, name string) string {
	s := e.secret(ns, name)()
	if s == nil {
		return ""
	}
	k := credentials.NewKeyring([]credentials.Secret{{Name: name, Type: string(s.Type), Data: s.Data}})
	m, err := k.Lookup("registry.example.com/x")
	if err != nil || len(m.Credentials) == 0 {
		return ""
	}
	return m.Credentials[0].Username + ":" + m.Credentials[0].Password
}

// A source replaced by a Secret of the other pull-secret type: each copy
// keeps its UID and type (a Secret's type cannot change, and a copy in use
// is never deleted for it) and gets the credential written in its type;
// a rotation after that reaches it the same way.
func TestASourceOfTheOtherTypeIsWrittenInTheCopysType(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	src := e.source("regcred", "registry.example.com", "ci", "first")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("types")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	before := e.secret(ns, name)()
	g.Expect(before.Type).To(Equal(corev1.SecretTypeDockerConfigJson))

	legacy := func(password string) *corev1.Secret {
		var cfg struct {
			Auths json.RawMessage `json:"auths"`
		}
		g.Expect(json.Unmarshal(dockerConfig(t, "registry.example.com", "ci", password), &cfg)).To(Succeed())
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: "regcred"},
			Type:       corev1.SecretTypeDockercfg,
			Data:       map[string][]byte{corev1.DockerConfigKey: cfg.Auths},
		}
	}
	// Replaced by a legacy Secret with a new password: the type of a
	// Secret cannot be edited, so the source is deleted and made again.
	g.Expect(e.client.Delete(e.ctx(), src)).To(Succeed())
	g.Expect(e.client.Create(e.ctx(), legacy("second"))).To(Succeed())
	wantData := func(password string) []byte {
		return dockerConfig(t, "registry.example.com", "ci", password)
	}
	eventually(g, func() string { return e.copyCredential(ns, name) }).Should(Equal("ci:second"))
	after := e.secret(ns, name)()
	g.Expect(after.UID).To(Equal(before.UID), "the copy was deleted and made again")
	g.Expect(after.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
	g.Expect(after.Data).To(HaveKey(corev1.DockerConfigJsonKey))
	g.Expect(string(after.Data[corev1.DockerConfigJsonKey])).To(MatchJSON(wantData("second")))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	// The legacy source rotates: the copy follows, in its own type.
	cur := &corev1.Secret{}
	g.Expect(e.client.Get(e.ctx(), client.ObjectKeyFromObject(src), cur)).To(Succeed())
	cur.Data = legacy("third").Data
	g.Expect(e.client.Update(e.ctx(), cur)).To(Succeed())
	eventually(g, func() string { return e.copyCredential(ns, name) }).Should(Equal("ci:third"))
	g.Expect(e.secret(ns, name)().UID).To(Equal(before.UID))
	eventually(g, e.readyCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonReady))

	// A new namespace gets a copy of the source's own type.
	ns2 := e.namespace()
	eventually(g, func() corev1.SecretType {
		if s := e.secret(ns2, name)(); s != nil {
			return s.Type
		}
		return ""
	}).Should(Equal(corev1.SecretTypeDockercfg))
}
