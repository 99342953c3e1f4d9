package controller_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
)

// Secret bytes never appear in logs (at any verbosity), Events or status,
// whatever happens to the source: copied, broken, rejected by the registry.
func TestSecretBytesNeverLeak(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	const canary = "canary-Pa55:w0rd-7f3a"
	reg := registrytest.Start(t, registrytest.Options{
		Auth: registrytest.AuthHtpasswd, Users: []registrytest.User{{Name: "ci", Password: "the-right-one"}},
	})
	reg.Push(t, "shop/web", "1.0")
	src := e.source("regcred", reg.Host, "ci", canary)
	ns := e.namespace()
	e.startController(func(o *manager.Options) { o.Controller.VerifyTimeout = 5e9 })
	name := e.uniqueName("leak")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.Verify = &v1alpha1.VerifySpec{Image: reg.Host + "/shop/web:1.0", Insecure: true}
	})
	eventually(g, e.secret(ns, name)).ShouldNot(BeNil())
	eventually(g, e.verifiedCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonVerificationFailed))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	// Broken: an auth field that is not base64, built around the canary.
	src.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"` + reg.Host + `":{"auth":"` + canary + `"}}}`)
	g.Expect(e.client.Update(e.ctx(), src)).To(Succeed())
	eventually(g, e.readyCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonSourceInvalid))
	// Events are sent asynchronously: scan them only once those of every
	// step are in.
	eventually(g, e.eventReasons(name)).Should(ContainElements(v1alpha1.ReasonReady, v1alpha1.ReasonSourceInvalid))

	forms := []string{
		canary,
		base64.StdEncoding.EncodeToString([]byte("ci:" + canary)),
		base64.StdEncoding.EncodeToString([]byte(canary)),
	}
	var events corev1.EventList
	g.Expect(e.client.List(e.ctx(), &events, client.InNamespace(metav1.NamespaceAll))).To(Succeed())
	eventsJSON, _ := json.Marshal(events)
	statusJSON, _ := json.Marshal(e.status(name))
	for where, text := range map[string]string{
		"controller logs": controllerLogs.String(), "events": string(eventsJSON), "status": string(statusJSON),
	} {
		g.Expect(text).NotTo(BeEmpty())
		for _, f := range forms {
			g.Expect(strings.Contains(text, f)).To(BeFalse(), "secret bytes in %s", where)
		}
	}
	g.Expect(controllerLogs.String()).To(ContainSubstring(name), "the logs are being captured")
}
