package controller_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
)

// installPodInjection installs the shipped MutatingAdmissionPolicy of
// Pods mode (config/pod-injection), as kustomize and Helm do. It acts
// only for ClusterPullSecrets that publish status.injection, so the other
// tests' Pods are untouched.
func (e *env) installPodInjection() {
	e.t.Helper()
	raw, err := os.ReadFile("../../config/pod-injection/policy.yaml")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			e.t.Fatal(err)
		}
		if err := e.client.Create(e.ctx(), &u); err != nil && !apierrors.IsAlreadyExists(err) {
			e.t.Fatal(err)
		}
	}
}

func (e *env) podModeCPS(name, source string, mutate ...func(*v1alpha1.ClusterPullSecret)) {
	e.t.Helper()
	e.cps(name, source, append([]func(*v1alpha1.ClusterPullSecret){func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.AttachTo = v1alpha1.AttachToPods
	}}, mutate...)...)
}

// createPod creates a Pod for real and returns it as admitted.
func (e *env) createPod(ns, name, sa string, mutate func(*corev1.Pod), images ...string) (*corev1.Pod, error) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
	for i, img := range images {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "c" + string(rune('a'+i)), Image: img})
	}
	if mutate != nil {
		mutate(pod)
	}
	err := e.client.Create(e.ctx(), pod)
	return pod, err
}

func pullSecretsOf(pod *corev1.Pod) []string {
	names := []string{}
	for _, r := range pod.Spec.ImagePullSecrets {
		names = append(names, r.Name)
	}
	return names
}

// Pods mode in three namespaces: the API server adds the name to new Pods
// pulling from the credential's registries; the ServiceAccount's names and
// a Pod's own are kept; a Pod pulling only public images is untouched; a
// ServiceAccount that enforces mountable secrets still has its Pods
// admitted; and the controller writes no ServiceAccount.
func TestPodModeInjectsWithoutWritingServiceAccounts(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.installPodInjection()
	e.userSecret(e.srcNS, "regcred", nil, nil) // any pull secret; its keys follow
	src := &corev1.Secret{}
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: e.srcNS, Name: "regcred"}, src)).To(Succeed())
	src.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"registry.example.com":{"auth":"Y2k6cHc="},"*.pkg.example.dev":{"auth":"Y2k6cHc="}}}`)
	g.Expect(e.client.Update(e.ctx(), src)).To(Succeed())
	one, two, three := e.namespace(), e.namespace(), e.namespace()
	e.serviceAccount(one, "builder", "sa-own")
	strict := e.serviceAccount(two, "strict")
	strict.Annotations = map[string]string{"kubernetes.io/enforce-mountable-secrets": "true"}
	g.Expect(e.client.Update(e.ctx(), strict)).To(Succeed())
	before := map[string]string{}
	for _, ns := range []string{one, two, three} {
		var sas corev1.ServiceAccountList
		g.Expect(e.client.List(e.ctx(), &sas, client.InNamespace(ns))).To(Succeed())
		for _, sa := range sas.Items {
			before[ns+"/"+sa.Name] = sa.ResourceVersion
		}
	}

	run := e.startController()
	name := e.uniqueName("pods")
	e.podModeCPS(name, "regcred")
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
	inj := e.status(name).Injection
	g.Expect(inj).NotTo(BeNil())
	g.Expect(inj.SecretName).To(Equal(name))
	g.Expect(inj.SkipServiceAccounts).To(ConsistOf(two + "/strict"))

	for _, tc := range []struct {
		ns, pod, sa string
		mutate      func(*corev1.Pod)
		images      []string
		want        []string
	}{
		{ns: one, pod: "private", sa: "default", images: []string{"registry.example.com/team/app:1"}, want: []string{name}},
		{ns: one, pod: "sa-names-kept", sa: "builder", images: []string{"registry.example.com/team/app:1"}, want: []string{"sa-own", name}},
		{ns: one, pod: "own-names-kept", sa: "default", images: []string{"registry.example.com/team/app:1"},
			mutate: func(p *corev1.Pod) { p.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "mine"}} }, want: []string{"mine", name}},
		{ns: two, pod: "public", sa: "default", images: []string{"nginx:1.27", "quay.io/prometheus/node-exporter"}, want: []string{}},
		{ns: two, pod: "glob", sa: "default", images: []string{"eu.pkg.example.dev/x/y:2"}, want: []string{name}},
		{ns: two, pod: "enforcing", sa: "strict", images: []string{"registry.example.com/team/app:1"}, want: []string{}},
		{ns: three, pod: "init", sa: "default", images: []string{"nginx"},
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "registry.example.com/tools/init:1"}}
			}, want: []string{name}},
		{ns: three, pod: "opted-out", sa: "default", images: []string{"registry.example.com/team/app:1"},
			mutate: func(p *corev1.Pod) { p.Annotations = map[string]string{v1alpha1.OptOutAnnotation: "true"} }, want: []string{}},
	} {
		pod, err := e.createPod(tc.ns, tc.pod, tc.sa, tc.mutate, tc.images...)
		g.Expect(err).NotTo(HaveOccurred(), "Pod %s/%s must be admitted", tc.ns, tc.pod)
		g.Expect(pullSecretsOf(pod)).To(Equal(tc.want), "Pod %s/%s", tc.ns, tc.pod)
	}

	// No ServiceAccount was written, by the controller's count and by the
	// server's (resourceVersions).
	g.Expect(writes(run.requests())).NotTo(HaveKey("patch serviceaccounts"))
	for _, ns := range []string{one, two, three} {
		var sas corev1.ServiceAccountList
		g.Expect(e.client.List(e.ctx(), &sas, client.InNamespace(ns))).To(Succeed())
		for _, sa := range sas.Items {
			if rv, ok := before[ns+"/"+sa.Name]; ok {
				g.Expect(sa.ResourceVersion).To(Equal(rv), "ServiceAccount %s/%s was written", ns, sa.Name)
			}
		}
	}
}

// A Pod created a moment before its namespace's copy exists lists the name
// anyway; the kubelet's next try, after its back-off, finds the copy.
func TestPodModePodBeforeItsCopyRecovers(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.installPodInjection()
	e.source("regcred", "registry.example.com", "ci", "pw")
	first := e.namespace()
	name := e.uniqueName("early")
	e.podModeCPS(name, "regcred")
	// The controller publishes the injection, then stops: a namespace
	// made now gets no copy until it runs again.
	run := e.startController()
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
	g.Expect(e.secret(first, name)()).NotTo(BeNil())
	run.stop()

	late := e.namespace()
	pod, err := e.createPod(late, "early", "default", nil, "registry.example.com/team/app:1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(pullSecretsOf(pod)).To(Equal([]string{name}))
	g.Expect(e.secret(late, name)()).To(BeNil(), "the copy does not exist yet")

	cs, err := kubernetes.NewForConfig(e.c.Config)
	g.Expect(err).NotTo(HaveOccurred())
	node := &kubeletsim.Node{Client: cs, Serves: func(ns string) bool { return ns == late }, BackOff: time.Second, MaxBackOff: 4 * time.Second}
	ctx, cancel := context.WithCancel(e.ctx())
	defer cancel()
	go func() { _ = node.Run(ctx, 100*time.Millisecond) }()
	phase := func() corev1.PodPhase {
		var p corev1.Pod
		if err := e.client.Get(e.ctx(), client.ObjectKeyFromObject(pod), &p); err != nil {
			return corev1.PodUnknown
		}
		return p.Status.Phase
	}
	waiting := func() string {
		var p corev1.Pod
		if err := e.client.Get(e.ctx(), client.ObjectKeyFromObject(pod), &p); err != nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return ""
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason
	}
	eventually(g, waiting).Should(Equal("ErrImagePull"), "the first pull fails: the copy is missing")
	e.startController()
	eventually(g, e.secret(late, name)).ShouldNot(BeNil())
	eventually(g, phase).Should(Equal(corev1.PodRunning), "the kubelet's retry finds the copy")
	g.Expect(node.Pulls()).To(BeNumerically(">=", 2))
	var p corev1.Pod
	g.Expect(e.client.Get(e.ctx(), client.ObjectKeyFromObject(pod), &p)).To(Succeed())
	g.Expect(p.UID).To(Equal(pod.UID), "the same Pod: nothing restarted it")
}

// Switching a ClusterPullSecret between modes never leaves a new Pod
// without the credential: Pods created all along, as a Deployment would,
// each get the name from the ServiceAccount or from the policy; and once
// nothing needs it, no attachment is left behind.
func TestSwitchingModesNeverLeavesAPodWithout(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.installPodInjection()
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("switch")
	e.cps(name, "regcred")
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
	g.Expect(e.pullSecretNames(ns, "default")()).To(ContainElement(name))

	// A steady stream of Pods (server-side dry runs: admitted exactly as
	// real ones), each checked for the name.
	ctx, cancel := context.WithCancel(e.ctx())
	var missing []string
	created := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p" + strings.Repeat("x", i%3) + time.Now().Format("150405.000000")},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/team/app:1"}}}}
			if err := e.client.Create(ctx, pod, client.DryRunAll); err != nil {
				continue
			}
			created++
			if !slices.Contains(pullSecretsOf(pod), name) {
				missing = append(missing, time.Now().Format(time.StampMilli)+" "+strings.Join(pullSecretsOf(pod), ","))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	switchTo := func(target v1alpha1.AttachTarget) {
		var c v1alpha1.ClusterPullSecret
		g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &c)).To(Succeed())
		c.Spec.AttachTo = target
		g.Expect(e.client.Update(e.ctx(), &c)).To(Succeed())
	}

	switchTo(v1alpha1.AttachToPods)
	eventually(g, e.pullSecretNames(ns, "default")).ShouldNot(ContainElement(name), "detached once the policy injects")
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
	sa := &corev1.ServiceAccount{}
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "default"}, sa)).To(Succeed())
	g.Expect(sa.Annotations).NotTo(HaveKey(v1alpha1.AttachedAnnotation), "no record left behind")

	switchTo(v1alpha1.AttachToServiceAccounts)
	eventually(g, e.pullSecretNames(ns, "default")).Should(ContainElement(name))
	eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
	eventually(g, func() *v1alpha1.InjectionStatus { return e.status(name).Injection }).Should(BeNil(), "the injection is withdrawn once the ServiceAccounts carry the name")
	time.Sleep(time.Second)
	cancel()
	<-done
	t.Logf("%d Pods created across two switches", created)
	g.Expect(created).To(BeNumerically(">=", 50), "the stream ran")
	g.Expect(missing).To(BeEmpty(), "Pods created without the credential")
}

// Where the API server cannot inject (here: the policy is not installed),
// a Pods-mode ClusterPullSecret says so, keeps its copies, and nothing
// else breaks.
func TestPodModeWithoutThePolicySaysSo(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController(func(o *manager.Options) { o.Controller.PodInjectionPolicy = "not-installed" })
	pods := e.uniqueName("pods")
	e.podModeCPS(pods, "regcred")
	sas := e.uniqueName("sas")
	e.cps(sas, "regcred")
	eventually(g, e.conditionOf(pods, v1alpha1.ConditionReady)).Should(And(HavePrefix(v1alpha1.ReasonPodInjectionUnavailable+": "),
		ContainSubstring("MutatingAdmissionPolicy not-installed is not installed")))
	eventually(g, e.readyCondition(sas)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.secret(ns, pods)()).NotTo(BeNil(), "the copy is kept")
	g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{sas}), "Pods mode attaches nothing, the other is served")
	g.Expect(e.status(pods).Injection).To(BeNil())
}
