package controller_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// Behaviour 1 and 2: a copy in every selected namespace, the name on every
// selected ServiceAccount, other entries kept in order, and nothing written
// once converged.
func TestCopiesSourceAndAttachesKeepingOtherEntries(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	src := e.source("regcred", "registry.example.com", "ci", "s3cret:pw")
	ns1, ns2 := e.namespace(), e.namespace()
	e.serviceAccount(ns1, "builder", "theirs-b", "theirs-a")
	other := e.c.Namespace(t) // not selected
	run := e.startController()
	name := e.uniqueName("shop")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "regcred" })

	for _, ns := range []string{ns1, ns2} {
		eventually(g, e.secret(ns, "regcred")).ShouldNot(BeNil())
		copy := e.secret(ns, "regcred")()
		g.Expect(copy.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
		g.Expect(copy.Data).To(Equal(src.Data))
		g.Expect(copy.Labels).To(HaveKeyWithValue(v1alpha1.ManagedByLabel, v1alpha1.ManagedByValue))
		g.Expect(copy.Labels).To(HaveKeyWithValue(v1alpha1.OwnerLabel, name))
		g.Expect(copy.Annotations).To(HaveKeyWithValue(v1alpha1.SourceAnnotation, e.srcNS+"/regcred"))
		g.Expect(copy.Annotations).To(HaveKey(v1alpha1.DataHashAnnotation))
		g.Expect(copy.Annotations[v1alpha1.DataHashAnnotation]).NotTo(ContainSubstring("s3cret"))
		eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"regcred"}))
	}
	eventually(g, e.pullSecretNames(ns1, "builder")).Should(Equal([]string{"theirs-b", "theirs-a", "regcred"}))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	eventually(g, func() int32 { return e.status(name).ServiceAccountsAttached }).Should(BeEquivalentTo(3))

	st := e.status(name)
	g.Expect(st.Namespaces).To(Equal(v1alpha1.NamespaceCounts{Matched: 2, Ready: 2, Summary: "2/2"}))
	g.Expect(st.ServiceAccountsAttached).To(BeEquivalentTo(3))
	g.Expect(st.SecretName).To(Equal("regcred"))

	var sa corev1.ServiceAccount
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns1, Name: "builder"}, &sa)).To(Succeed())
	rec, err := serviceaccount.ReadRecord(&sa)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rec).To(Equal(serviceaccount.Record{"regcred": name}), "only the name we added is recorded as ours")

	g.Expect(e.secret(other, "regcred")()).To(BeNil(), "unselected namespaces get nothing")
	g.Expect(e.pullSecretNames(other, "default")()).To(BeEmpty())
	g.Expect(e.secret("kube-system", "regcred")()).To(BeNil())

	// Converged: touching what the controller watches writes nothing.
	settled := func() map[string]float64 { return writes(run.requests()) }
	consistently(g, settled).Should(Equal(settled()))
	before := settled()
	var nsObj corev1.Namespace
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: ns1}, &nsObj)).To(Succeed())
	nsObj.Annotations = map[string]string{"touched": "yes"}
	g.Expect(e.client.Update(e.ctx(), &nsObj)).To(Succeed())
	sa.Labels = map[string]string{"touched": "yes"}
	g.Expect(e.client.Update(e.ctx(), &sa)).To(Succeed())
	stBefore := e.status(name)
	consistently(g, func() map[string]float64 { return writes(run.requests()) }).Should(Equal(before), "status before %+v\nafter %+v", stBefore, e.status(name))
	g.Expect(e.pullSecretNames(ns1, "builder")()).To(Equal([]string{"theirs-b", "theirs-a", "regcred"}), "no duplicates")
}

// Behaviour 3: a Secret pullsecrets did not create is never touched.
func TestForeignSecretIsAConflictAndLeftAlone(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns1, ns2 := e.namespace(), e.namespace()
	foreign := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns1, Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(t, "other.example.com", "them", "theirs")},
	}
	g.Expect(e.client.Create(e.ctx(), foreign)).To(Succeed())
	e.startController()
	name := e.uniqueName("conflict")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "regcred" })

	eventually(g, e.readyCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonConflict))
	eventually(g, e.pullSecretNames(ns2, "default")).Should(Equal([]string{"regcred"}), "the rest goes on")
	// The status follows the namespaces' reports within its pacing.
	eventually(g, func() int32 { return e.status(name).Namespaces.Ready }).Should(BeEquivalentTo(1))
	st := e.status(name)
	g.Expect(st.FailingNamespaces).To(ConsistOf(HaveField("Namespace", ns1)))
	g.Expect(st.FailingNamespaces[0].Reason).To(Equal(v1alpha1.ReasonConflict))
	eventually(g, e.eventReasons(name)).Should(ContainElement(v1alpha1.ReasonConflict))

	got := e.secret(ns1, "regcred")()
	g.Expect(got.Data).To(Equal(foreign.Data))
	g.Expect(got.Labels).To(BeEmpty())
	g.Expect(got.Annotations).To(BeEmpty())
	g.Expect(e.pullSecretNames(ns1, "default")()).To(BeEmpty(), "a foreign Secret is not attached either")
}

// Behaviour 4: rotation reaches every copy.
func TestRotationUpdatesEveryCopy(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	src := e.source("regcred", "registry.example.com", "ci", "old")
	namespaces := []string{e.namespace(), e.namespace(), e.namespace()}
	e.startController()
	name := e.uniqueName("rotate")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	src.Data[corev1.DockerConfigJsonKey] = dockerConfig(t, "registry.example.com", "ci", "new")
	g.Expect(e.client.Update(e.ctx(), src)).To(Succeed())
	for _, ns := range namespaces {
		eventually(g, func() []byte {
			s := e.secret(ns, name)()
			if s == nil {
				return nil
			}
			return s.Data[corev1.DockerConfigJsonKey]
		}).Should(Equal(src.Data[corev1.DockerConfigJsonKey]))
	}
}

// The controller keeps only what it reads of a ServiceAccount (package
// accounts) and writes a patch of its own fields on the version it read:
// everything else others wrote stays, through an attach, a rename and a
// detach.
func TestWhatOthersWroteOnAServiceAccountIsKept(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	theirs := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "gitops",
			Labels: map[string]string{"app.kubernetes.io/managed-by": "argocd", "team": "shop"},
			Annotations: map[string]string{
				"argocd.argoproj.io/tracking-id":                   "shop:/ServiceAccount:" + ns + "/gitops",
				"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","kind":"ServiceAccount"}`,
			},
		},
		Secrets:                      []corev1.ObjectReference{{Name: "gitops-token"}},
		ImagePullSecrets:             []corev1.LocalObjectReference{{Name: "theirs"}},
		AutomountServiceAccountToken: new(false),
	}
	g.Expect(e.client.Create(e.ctx(), theirs)).To(Succeed())
	kept := func() corev1.ServiceAccount {
		var sa corev1.ServiceAccount
		g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "gitops"}, &sa)).To(Succeed())
		return sa
	}
	same := func(step string) {
		sa := kept()
		for k, v := range theirs.Annotations {
			g.Expect(sa.Annotations).To(HaveKeyWithValue(k, v), step)
		}
		g.Expect(sa.Labels).To(Equal(theirs.Labels), step)
		g.Expect(sa.Secrets).To(Equal(theirs.Secrets), step)
		g.Expect(sa.AutomountServiceAccountToken).To(Equal(theirs.AutomountServiceAccountToken), step)
	}
	e.startController()
	name := e.uniqueName("shop")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "regcred" })
	eventually(g, e.pullSecretNames(ns, "gitops")).Should(Equal([]string{"theirs", "regcred"}))
	same("after the attach")

	var cps v1alpha1.ClusterPullSecret
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &cps)).To(Succeed())
	cps.Spec.SecretName = "regcred-v2"
	g.Expect(e.client.Update(e.ctx(), &cps)).To(Succeed())
	eventually(g, e.pullSecretNames(ns, "gitops")).Should(Equal([]string{"theirs", "regcred-v2"}))
	same("after the rename")

	e.deleteClusterPullSecrets()
	eventually(g, e.pullSecretNames(ns, "gitops")).Should(Equal([]string{"theirs"}))
	same("after the detach")
	g.Expect(kept().Annotations).NotTo(HaveKey(v1alpha1.AttachedAnnotation))
	g.Expect(kept().Annotations).NotTo(HaveKey(v1alpha1.AttachedProofAnnotation))
}
