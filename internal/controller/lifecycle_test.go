package controller_test

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

func (e *env) setSpec(name string, mutate func(*v1alpha1.ClusterPullSecretSpec)) {
	e.t.Helper()
	var obj v1alpha1.ClusterPullSecret
	g := NewWithT(e.t)
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &obj)).To(Succeed())
	mutate(&obj.Spec)
	g.Expect(e.client.Update(e.ctx(), &obj)).To(Succeed())
}

func (e *env) pod(ns, name, image string) *corev1.Pod {
	e.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
	if err := e.client.Create(e.ctx(), pod); err != nil {
		e.t.Fatal(err)
	}
	return pod
}

func dataOf(s *corev1.Secret) []byte {
	if s == nil {
		return nil
	}
	return s.Data[corev1.DockerConfigJsonKey]
}

// Behaviour 5: rename. New copies first, then the new name attached and
// the old one detached; an old copy goes only once no Pod lists it.
func TestRenameRetiresOldCopiesOnceNoPodListsThem(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	busy, idle := e.namespace(), e.namespace()
	e.startController()
	name := e.uniqueName("rename")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "reg-v1" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	// Admission copies reg-v1 into this Pod: its list never changes now.
	pod := e.pod(busy, "running", "registry.example.com/shop/web:1")
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: busy, Name: pod.Name}, pod)).To(Succeed())
	g.Expect(pod.Spec.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "reg-v1"}}))

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "reg-v2" })
	for _, ns := range []string{busy, idle} {
		eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"reg-v2"}))
		g.Expect(e.secret(ns, "reg-v2")()).NotTo(BeNil())
	}
	eventually(g, e.secret(idle, "reg-v1")).Should(BeNil())
	eventually(g, func() int32 { return e.status(name).PendingRetirement }).Should(BeEquivalentTo(1))
	g.Expect(e.status(name).SecretName).To(Equal("reg-v2"))
	consistently(g, e.secret(busy, "reg-v1")).ShouldNot(BeNil(), "a Pod still lists reg-v1")

	g.Expect(e.client.Delete(e.ctx(), pod, client.GracePeriodSeconds(0))).To(Succeed())
	eventually(g, e.secret(busy, "reg-v1")).Should(BeNil())
	eventually(g, func() int32 { return e.status(name).PendingRetirement }).Should(BeZero())
	eventually(g, e.eventReasons(name)).Should(ContainElement(v1alpha1.ReasonCopyRetired))
}

// Behaviour 5: a registry move replaces the source; copies follow.
func TestRegistryMoveFollowsTheNewSource(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("old-registry", "old.example.com", "ci", "pw")
	moved := e.source("new-registry", "new.example.com:5000", "ci", "pw2")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("move")
	e.cps(name, "old-registry", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "regcred" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.Source.Name = "new-registry" })
	eventually(g, func() []byte { return dataOf(e.secret(ns, "regcred")()) }).Should(Equal(moved.Data[corev1.DockerConfigJsonKey]))
	g.Expect(e.secret(ns, "regcred")().Annotations).To(HaveKeyWithValue(v1alpha1.SourceAnnotation, e.srcNS+"/new-registry"))
	g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{"regcred"}))
}

// Behaviour 6: a missing or invalid source never breaks working pulls.
func TestSourceMissingOrInvalidLeavesCopiesAsTheyAre(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	src := e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("source")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	before := e.secret(ns, name)()

	g.Expect(e.client.Delete(e.ctx(), src)).To(Succeed())
	eventually(g, e.readyCondition(name)).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", v1alpha1.ReasonSourceNotFound)))
	eventually(g, e.eventReasons(name)).Should(ContainElement(v1alpha1.ReasonSourceNotFound))
	late := e.namespace()
	consistently(g, e.secret(late, name)).Should(BeNil(), "nothing to copy")
	g.Expect(e.secret(ns, name)().ResourceVersion).To(Equal(before.ResourceVersion), "the copy is left exactly as it is")
	g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{name}))

	// Valid JSON (the API accepts it) that makes the kubelet fail every pull.
	bad := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"!!not-base64!!"}}}`)},
	}
	g.Expect(e.client.Create(e.ctx(), bad)).To(Succeed())
	eventually(g, e.readyCondition(name)).Should(HaveField("Reason", v1alpha1.ReasonSourceInvalid))
	cond := e.readyCondition(name)()
	g.Expect(cond.Message).NotTo(ContainSubstring("not-base64"), "conditions never quote secret data")
	consistently(g, func() string { return e.secret(ns, name)().ResourceVersion }).Should(Equal(before.ResourceVersion))

	// A source outside the namespaces the controller may read.
	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.Source.Namespace = "kube-system" })
	eventually(g, e.readyCondition(name)).Should(And(HaveField("Reason", v1alpha1.ReasonSourceNotFound), HaveField("Message", ContainSubstring("may read from"))))
}

// Behaviour 7: new namespaces and ServiceAccounts come from watch events,
// without a single extra read.
func TestNewNamespacesAndServiceAccountsAreServedFromWatches(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	first := e.namespace()
	run := e.startController()
	name := e.uniqueName("watch")
	e.cps(name, "regcred")
	eventually(g, e.pullSecretNames(first, "default")).Should(Equal([]string{name}))
	reads := func() map[string]float64 {
		out := map[string]float64{}
		for k, v := range run.requests() {
			if k[:4] == "get " || k[:5] == "list " {
				out[k] = v
			}
		}
		return out
	}
	before := reads()

	start := time.Now()
	late := e.namespace()
	eventually(g, e.pullSecretNames(late, "default")).Should(Equal([]string{name}))
	t.Logf("new namespace to default ServiceAccount carrying the secret: %v", time.Since(start))
	g.Expect(e.secret(late, name)()).NotTo(BeNil())

	e.serviceAccount(late, "late-comer")
	eventually(g, e.pullSecretNames(late, "late-comer")).Should(Equal([]string{name}))
	g.Expect(reads()).To(Equal(before), "no polling, no extra reads")
}

// Behaviour 9: deletion detaches and deletes only what pullsecrets made.
func TestDeletionRemovesOnlyWhatItMade(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.serviceAccount(ns, "builder", "theirs")
	// "reg" was already listed here by hand: not ours to remove.
	e.serviceAccount(ns, "legacy", "reg")
	theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "theirs"}, StringData: map[string]string{"k": "v"}}
	g.Expect(e.client.Create(e.ctx(), theirs)).To(Succeed())
	e.startController()
	name := e.uniqueName("delete")
	cps := e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "reg" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.pullSecretNames(ns, "builder")()).To(Equal([]string{"theirs", "reg"}))
	g.Expect(e.pullSecretNames(ns, "legacy")()).To(Equal([]string{"reg"}))

	g.Expect(e.client.Delete(e.ctx(), cps)).To(Succeed())
	eventually(g, func() bool {
		var obj v1alpha1.ClusterPullSecret
		return e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &obj) != nil
	}).Should(BeTrue(), "the finalizer is removed once everything is cleaned up")
	g.Expect(e.secret(ns, "reg")()).To(BeNil())
	g.Expect(e.pullSecretNames(ns, "builder")()).To(Equal([]string{"theirs"}))
	g.Expect(e.pullSecretNames(ns, "default")()).To(BeEmpty())
	g.Expect(e.pullSecretNames(ns, "legacy")()).To(Equal([]string{"reg"}))
	g.Expect(e.secret(ns, "theirs")()).NotTo(BeNil())
}

// Behaviour 9: a namespace going away is not an error.
func TestDeletedNamespaceIsNotAFailure(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	keep, gone := e.namespace(), e.namespace()
	e.startController()
	name := e.uniqueName("nsgone")
	e.cps(name, "regcred")
	eventually(g, func() int32 { return e.status(name).Namespaces.Ready }).Should(BeEquivalentTo(2))

	g.Expect(e.client.Delete(e.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: gone}})).To(Succeed())
	eventually(g, func() v1alpha1.NamespaceCounts { return e.status(name).Namespaces }).Should(Equal(v1alpha1.NamespaceCounts{Matched: 1, Ready: 1, Summary: "1/1"}))
	g.Expect(e.readyCondition(name)()).To(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.pullSecretNames(keep, "default")()).To(Equal([]string{name}))
}

// Behaviour 10: several ClusterPullSecrets on one ServiceAccount, and two
// claiming one name.
func TestSeveralClusterPullSecretsShareServiceAccounts(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("a", "a.example.com", "ci", "pw")
	e.source("b", "b.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	a, b, c := e.uniqueName("a"), e.uniqueName("b"), e.uniqueName("c")
	e.cps(a, "a", func(o *v1alpha1.ClusterPullSecret) { o.Spec.SecretName = "reg-a" })
	e.cps(b, "b", func(o *v1alpha1.ClusterPullSecret) { o.Spec.SecretName = "reg-b" })
	eventually(g, e.pullSecretNames(ns, "default")).Should(ConsistOf("reg-a", "reg-b"))
	eventually(g, e.readyCondition(a)).Should(HaveField("Status", metav1.ConditionTrue))

	time.Sleep(1100 * time.Millisecond) // creation timestamps have a one-second resolution
	e.cps(c, "b", func(o *v1alpha1.ClusterPullSecret) { o.Spec.SecretName = "reg-a" })
	eventually(g, e.readyCondition(c)).Should(HaveField("Reason", v1alpha1.ReasonConflict))
	g.Expect(e.readyCondition(a)()).To(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.secret(ns, "reg-a")().Labels).To(HaveKeyWithValue(v1alpha1.OwnerLabel, a))
	g.Expect(e.pullSecretNames(ns, "default")()).To(HaveLen(2))
}

// Behaviour 8: Pods that failed before the fix are replaced when their
// owner recreates them; bare Pods and Pods failing for another registry
// are left alone.
func TestRestartPodsOnPullFailure(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.deployment(ns, "web", "registry.example.com/shop/web:1")
	stuck := e.waitForPod(ns, "app=web")
	e.failPull(stuck)
	bare := e.pod(ns, "bare", "registry.example.com/shop/tool:1")
	e.failPull(bare)
	elsewhere := e.pod(ns, "elsewhere", "other.example.com/x:1")
	e.failPull(elsewhere)

	e.startController()
	name := e.uniqueName("restart")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.SecretName = "regcred"
		c.Spec.RestartPods = v1alpha1.RestartOnPullFailure
	})
	eventually(g, func() []corev1.LocalObjectReference {
		pod := e.waitForPod(ns, "app=web")
		if pod.UID == stuck.UID {
			return nil
		}
		return pod.Spec.ImagePullSecrets
	}).Should(Equal([]corev1.LocalObjectReference{{Name: "regcred"}}), "the ReplicaSet recreated the Pod, and admission gave it the secret")
	eventually(g, e.eventReasons(name)).Should(ContainElements(v1alpha1.ReasonPodRestarted, v1alpha1.ReasonPodStuck))
	consistently(g, func() error {
		return e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "bare"}, &corev1.Pod{})
	}).Should(Succeed())
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "elsewhere"}, &corev1.Pod{})).To(Succeed())
}

func (e *env) deployment(ns, name, image string) *appsv1.Deployment {
	e.t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	if err := e.client.Create(e.ctx(), d); err != nil {
		e.t.Fatal(err)
	}
	return d
}

// waitForPod returns the one live Pod matching the selector.
func (e *env) waitForPod(ns, selector string) *corev1.Pod {
	e.t.Helper()
	var pod *corev1.Pod
	NewWithT(e.t).Eventually(func(g Gomega) {
		var list corev1.PodList
		sel, err := labels.Parse(selector)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(e.client.List(e.ctx(), &list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: sel})).To(Succeed())
		var live []corev1.Pod
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				live = append(live, p)
			}
		}
		g.Expect(live).To(HaveLen(1))
		pod = &live[0]
	}).WithTimeout(time.Minute).Should(Succeed())
	return pod
}

// failPull writes what a kubelet writes when the pull fails.
func (e *env) failPull(pod *corev1.Pod) {
	e.t.Helper()
	if _, err := kubeletsim.FailPull(e.ctx(), e.c.Client, pod, kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true}); err != nil {
		e.t.Fatal(err)
	}
}

// Drift: what a person removes by hand comes back, from watch events.
func TestDriftIsRepaired(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.serviceAccount(ns, "builder", "theirs")
	e.startController()
	name := e.uniqueName("drift")
	e.cps(name, "regcred")
	eventually(g, e.pullSecretNames(ns, "builder")).Should(Equal([]string{"theirs", name}))

	g.Expect(e.client.Delete(e.ctx(), e.secret(ns, name)())).To(Succeed())
	eventually(g, e.secret(ns, name)).ShouldNot(BeNil())

	var sa corev1.ServiceAccount
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "builder"}, &sa)).To(Succeed())
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "theirs"}, {Name: "added-by-hand"}}
	g.Expect(e.client.Update(e.ctx(), &sa)).To(Succeed())
	eventually(g, e.pullSecretNames(ns, "builder")).Should(Equal([]string{"theirs", "added-by-hand", name}))
}
