package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// The scenarios of the controller-trust issue, each against the real API
// server and the controller running as its generated RBAC.

func (e *env) userSecret(ns, name string, labels, annotations map[string]string) *corev1.Secret {
	e.t.Helper()
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Annotations: annotations},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(e.t, "theirs.example.com", "them", "their-password")},
	}
	if err := e.client.Create(e.ctx(), s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) setPullSecrets(ns, sa string, names ...string) {
	e.t.Helper()
	g := NewWithT(e.t)
	var obj corev1.ServiceAccount
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: sa}, &obj)).To(Succeed())
	obj.ImagePullSecrets = nil
	for _, n := range names {
		obj.ImagePullSecrets = append(obj.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	g.Expect(e.client.Update(e.ctx(), &obj)).To(Succeed())
}

// Scenario 1: renaming onto a name the user's own Secret holds reports a
// conflict and keeps the old name and copy: the ServiceAccount never
// loses the credential.
func TestRenameOntoAUsersSecretKeepsTheOldName(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.userSecret(ns, "x", nil, nil)
	e.startController()
	name := e.uniqueName("onto")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "y" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	e.setPullSecrets(ns, "default", "x", "y") // the user attaches their own x by hand

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "x" })
	eventually(g, e.readyCondition(name)).Should(And(HaveField("Reason", v1alpha1.ReasonConflict), HaveField("Message", ContainSubstring("not made by pullsecrets"))))
	consistently(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"x", "y"}))
	g.Expect(e.secret(ns, "y")()).NotTo(BeNil(), "our old copy stays while the new name is not ours")
	g.Expect(e.secret(ns, "x")().Labels).To(BeEmpty(), "the user's Secret is untouched")
	st := e.status(name)
	g.Expect(st.Retiring).To(ConsistOf(And(HaveField("Secret", "y"), HaveField("HeldBy", ContainElement("ServiceAccount default")))))
}

// Scenario 2: two ClusterPullSecrets want one name; the one whose copy is
// there keeps it, and the ServiceAccount never goes without it.
func TestTwoClusterPullSecretsClaimingOneName(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("a", "a.example.com", "ci", "pw")
	e.source("b", "b.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	older, newer := e.uniqueName("older"), e.uniqueName("newer")
	// The older one selects nothing at first.
	e.cps(older, "a", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.SecretName = "reg"
		c.Spec.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"nothing": "here"}}
	})
	time.Sleep(1100 * time.Millisecond) // creation timestamps have a one-second resolution
	e.cps(newer, "b", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "reg" })
	eventually(g, e.readyCondition(newer)).Should(HaveField("Status", metav1.ConditionTrue))

	e.setSpec(older, func(s *v1alpha1.ClusterPullSecretSpec) {
		s.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: e.label}
	})
	eventually(g, e.readyCondition(older)).Should(And(HaveField("Reason", v1alpha1.ReasonConflict), HaveField("Message", ContainSubstring(newer))))
	consistently(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"reg"}))
	g.Expect(e.secret(ns, "reg")().Labels).To(HaveKeyWithValue(v1alpha1.OwnerLabel, newer))
	g.Expect(e.readyCondition(newer)()).To(HaveField("Status", metav1.ConditionTrue))
}

// Scenario 3: Secrets wearing the controller's labels without its proof
// are never modified, adopted or deleted.
func TestForgedMarksAreNeverTouched(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("forged")
	cps := e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "wanted" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	late := e.c.Namespace(t) // selected only once the forged Secrets are in

	marks := map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: name}
	copied := e.secret(ns, "wanted")().Annotations // every annotation of a genuine copy, proof included
	forgedWanted := e.userSecret(late, "wanted", marks, map[string]string{
		v1alpha1.OwnerUIDAnnotation: string(cps.UID), v1alpha1.ProofAnnotation: copied[v1alpha1.ProofAnnotation],
	})
	forgedJunk := e.userSecret(ns, "junk", marks, map[string]string{v1alpha1.OwnerUIDAnnotation: string(cps.UID)})
	forgedOther := e.userSecret(ns, "other", map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: "no-such-cps"}, nil)
	var lateNS corev1.Namespace
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Name: late}, &lateNS)).To(Succeed())
	for k, v := range e.label {
		lateNS.Labels[k] = v
	}
	g.Expect(e.client.Update(e.ctx(), &lateNS)).To(Succeed())

	eventually(g, func() []v1alpha1.NamespaceFailure { return e.status(name).FailingNamespaces }).Should(ConsistOf(
		And(HaveField("Namespace", late), HaveField("Reason", v1alpha1.ReasonConflict))))
	for _, s := range []*corev1.Secret{forgedWanted, forgedJunk, forgedOther} {
		consistently(g, func() string {
			got := e.secret(s.Namespace, s.Name)()
			if got == nil {
				return "deleted"
			}
			return got.ResourceVersion
		}).Should(Equal(s.ResourceVersion), "Secret %s/%s", s.Namespace, s.Name)
	}
	g.Expect(e.pullSecretNames(late, "default")()).To(BeEmpty(), "a forged Secret is not attached")

	// Deleting the ClusterPullSecret removes only the genuine copy.
	g.Expect(e.client.Delete(e.ctx(), cps)).To(Succeed())
	eventually(g, func() bool {
		return e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &v1alpha1.ClusterPullSecret{}) != nil
	}).Should(BeTrue())
	g.Expect(e.secret(ns, "wanted")()).To(BeNil())
	for _, s := range []*corev1.Secret{forgedWanted, forgedJunk, forgedOther} {
		g.Expect(e.secret(s.Namespace, s.Name)()).NotTo(BeNil(), "Secret %s/%s", s.Namespace, s.Name)
	}
}

func (e *env) workload(obj client.Object) {
	e.t.Helper()
	if err := e.client.Create(e.ctx(), obj); err != nil {
		e.t.Fatal(err)
	}
}

func podTemplate(pullSecrets ...string) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/x:1"}}},
	}
	for _, n := range pullSecrets {
		t.Spec.ImagePullSecrets = append(t.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	return t
}

// Scenario 4: an old copy stays while any template that can still make
// Pods lists it (a Deployment scaled to 0, a CronJob between runs, a
// StatefulSet, a DaemonSet) or a live Pod reads it through a volume or env,
// and status names what holds it; it goes once they let go.
func TestRetirementWaitsForTemplatesAndSecretReferences(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("holders")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "old" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scaled-to-zero"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: sel, Template: podTemplate("old")}}
	cron := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
		Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: func() corev1.PodTemplateSpec {
			t := podTemplate("old")
			t.Spec.RestartPolicy = corev1.RestartPolicyNever
			return t
		}()}}}}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](0), Selector: sel, Template: podTemplate("old")}}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: appsv1.DaemonSetSpec{Selector: sel, Template: podTemplate("old")}}
	reader := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "reads-it"}, Spec: corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "new"}},
		Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/x:1", EnvFrom: []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "old"}}}}}},
		Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "old"}}}}}}}},
	}}
	for _, obj := range []client.Object{deploy, cron, sts, ds, reader} {
		e.workload(obj)
	}

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "new" })
	eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"new"}))
	want := []string{"CronJob nightly", "DaemonSet agent", "Deployment scaled-to-zero", "Pod reads-it", "StatefulSet db"}
	eventually(g, func() []v1alpha1.RetiringCopy { return e.status(name).Retiring }).Should(ConsistOf(
		And(HaveField("Namespace", ns), HaveField("Secret", "old"), HaveField("HeldBy", Equal(want)))))
	consistently(g, e.secret(ns, "old")).ShouldNot(BeNil(), "held by %v", want)

	// Let go one by one; the copy stays until the last one does.
	for _, obj := range []client.Object{deploy, cron, sts, ds} {
		g.Expect(e.client.Delete(e.ctx(), obj)).To(Succeed())
	}
	consistently(g, e.secret(ns, "old")).ShouldNot(BeNil(), "the Pod still reads it")
	g.Expect(e.client.Delete(e.ctx(), reader, client.GracePeriodSeconds(0))).To(Succeed())
	eventually(g, e.secret(ns, "old")).Should(BeNil())
	eventually(g, func() int32 { return e.status(name).PendingRetirement }).Should(BeZero())
}

// Scenario 5: a Pod that finishes releases the old copy at once, not at
// the next resync.
func TestFinishedPodReleasesTheOldCopyAtOnce(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("finished")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "v1" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	pod := e.pod(ns, "batch", "registry.example.com/x:1") // admission gives it v1
	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "v2" })
	eventually(g, func() int32 { return e.status(name).PendingRetirement }).Should(BeEquivalentTo(1))
	consistently(g, e.secret(ns, "v1")).ShouldNot(BeNil())

	g.Expect(e.client.Get(e.ctx(), client.ObjectKeyFromObject(pod), pod)).To(Succeed())
	pod.Status.Phase = corev1.PodSucceeded
	g.Expect(e.client.Status().Update(e.ctx(), pod)).To(Succeed())
	start := time.Now()
	g.Eventually(e.secret(ns, "v1")).WithTimeout(5 * time.Second).WithPolling(20 * time.Millisecond).Should(BeNil())
	t.Logf("old copy retired %v after its last Pod finished", time.Since(start))
}

// Scenario 6: a Pod whose template lists its own pull secrets is never
// restarted (its replacement would not get the secret either), and a
// replacement that is stuck again is reported, never deleted again.
func TestRestartPodsNeverLoops(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.setPullSecrets(ns, "default", "legacy")
	own := podTemplate("legacy")
	own.Labels = map[string]string{"app": "own-list"}
	e.workload(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "own-list"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: own.Labels}, Template: own}})
	ownPod := e.waitForPod(ns, "app=own-list")
	e.failPull(ownPod)
	e.deployment(ns, "plain", "registry.example.com/shop/api:1")
	plainPod := e.waitForPod(ns, "app=plain")
	e.failPull(plainPod)

	run := e.startController()
	name := e.uniqueName("loop")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.SecretName = "regcred"
		c.Spec.RestartPods = v1alpha1.RestartOnPullFailure
	})
	// The plain Deployment's Pod is restarted once; its replacement gets
	// the secret from admission.
	replacement := e.waitForPodWith(ns, "app=plain", func(p *corev1.Pod) bool { return p.UID != plainPod.UID })
	g.Expect(replacement.Spec.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "legacy"}, {Name: "regcred"}}))
	e.failPull(replacement) // the credential itself is wrong: stuck again

	eventually(g, func() []v1alpha1.StuckPod { return e.status(name).StuckPods }).Should(ConsistOf(
		And(HaveField("Pod", ownPod.Name), HaveField("Reason", ContainSubstring("lists its own imagePullSecrets"))),
		And(HaveField("Pod", replacement.Name), HaveField("Reason", ContainSubstring("still fails to pull"))),
	))
	deletes := func() float64 { return run.requests()["delete pods"] }
	g.Expect(deletes()).To(BeEquivalentTo(1))
	consistently(g, deletes).Should(BeEquivalentTo(1), "no second restart")
	for _, p := range []*corev1.Pod{ownPod, replacement} {
		g.Expect(e.client.Get(e.ctx(), client.ObjectKeyFromObject(p), &corev1.Pod{})).To(Succeed(), "Pod %s", p.Name)
	}
	eventually(g, e.eventReasons(name)).Should(ContainElements(v1alpha1.ReasonPodRestarted, v1alpha1.ReasonPodStuck))
}

// Scenario 6, Jobs: a Job's Pod is not deleted when the Job cannot afford
// another failure.
func TestRestartSparesAJobAtItsBackoffLimit(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	tmpl := podTemplate()
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	tmpl.Labels = map[string]string{"app": "once"}
	e.workload(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once"}, Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: tmpl}})
	pod := e.waitForPod(ns, "app=once")
	e.failPull(pod)
	run := e.startController()
	name := e.uniqueName("job")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.RestartPods = v1alpha1.RestartOnPullFailure })
	eventually(g, func() []v1alpha1.StuckPod { return e.status(name).StuckPods }).Should(ConsistOf(
		And(HaveField("Pod", pod.Name), HaveField("Reason", ContainSubstring("backoffLimit")))))
	g.Expect(run.requests()).NotTo(HaveKey("delete pods"))
}

func (e *env) waitForPodWith(ns, selector string, ok func(*corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	var pod *corev1.Pod
	NewWithT(e.t).Eventually(func() bool {
		pod = e.waitForPod(ns, selector)
		return ok(pod)
	}).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeTrue())
	return pod
}

// Scenario 8: a foreign finalizer on a copy, or a terminating
// ServiceAccount carrying the record, does not hold the deletion of the
// ClusterPullSecret.
func TestDeletionIsNotHeldByWhatIsAlreadyGoing(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.serviceAccount(ns, "builder")
	e.startController()
	name := e.uniqueName("finalizers")
	cps := e.cps(name, "regcred")
	eventually(g, e.pullSecretNames(ns, "builder")).Should(Equal([]string{name}))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	const foreign = "example.com/backup"
	addFinalizer := func(obj client.Object) {
		g.Expect(e.client.Get(e.ctx(), client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		obj.SetFinalizers(append(obj.GetFinalizers(), foreign))
		g.Expect(e.client.Update(e.ctx(), obj)).To(Succeed())
	}
	removeFinalizer := func(obj client.Object) {
		if err := e.client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return
		}
		obj.SetFinalizers(nil)
		_ = e.client.Update(context.Background(), obj)
	}
	copy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	builder := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}}
	addFinalizer(copy)
	addFinalizer(builder)
	t.Cleanup(func() { removeFinalizer(copy); removeFinalizer(builder) })
	g.Expect(e.client.Delete(e.ctx(), builder)).To(Succeed()) // terminating, record and all

	g.Expect(e.client.Delete(e.ctx(), cps)).To(Succeed())
	eventually(g, func() bool {
		return e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &v1alpha1.ClusterPullSecret{}) != nil
	}).Should(BeTrue(), "the deletion completes")
	g.Expect(e.secret(ns, name)().DeletionTimestamp).NotTo(BeNil(), "the copy was deleted; its own finalizer holds it")
	g.Expect(e.pullSecretNames(ns, "default")()).To(BeEmpty())
}

// Scenario 7: malformed specs are refused by the API server.
func TestMalformedSpecsAreRefused(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name   string
		mutate func(*v1alpha1.ClusterPullSecret)
		want   string
	}{
		{"interval in words", func(c *v1alpha1.ClusterPullSecret) {
			c.Spec.Verify = &v1alpha1.VerifySpec{Image: "r.example.com/x:1", Interval: &metav1.Duration{}}
		}, "interval"},
		{"a secret name that is not a DNS name", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "Reg_Cred" }, "secretName"},
		{"a source namespace that is not a DNS label", func(c *v1alpha1.ClusterPullSecret) { c.Spec.Source.Namespace = "a.b" }, "namespace"},
		{"a glob with a character class", func(c *v1alpha1.ClusterPullSecret) { c.Spec.Namespaces.Include = []string{"team-[ab"} }, "include"},
		{"an operator that does not exist", func(c *v1alpha1.ClusterPullSecret) {
			c.Spec.Namespaces.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Equals", Values: []string{"a"}}}}
		}, "operator"},
		{"In without values", func(c *v1alpha1.ClusterPullSecret) {
			c.Spec.ServiceAccounts.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "In"}}}
		}, "values"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj := &v1alpha1.ClusterPullSecret{
				ObjectMeta: metav1.ObjectMeta{Name: e.uniqueName("bad")},
				Spec:       v1alpha1.ClusterPullSecretSpec{Source: v1alpha1.SourceReference{Namespace: e.srcNS, Name: "regcred"}},
			}
			tt.mutate(obj)
			err := e.client.Create(e.ctx(), obj, client.DryRunAll)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want an error about %s, got %v", tt.want, err)
			}
		})
	}
	// Durations as text: the typed client cannot even send these.
	for _, interval := range []string{"1 hour", "30s", "1h30", "-1h"} {
		u := e.unstructuredCPS(e.uniqueName("words"), map[string]any{"image": "r.example.com/x:1", "interval": interval})
		if err := e.client.Create(e.ctx(), u, client.DryRunAll); err == nil || !strings.Contains(err.Error(), "interval") {
			t.Errorf("interval %q: want a refusal, got %v", interval, err)
		}
	}
	for _, interval := range []string{"1m", "90s", "1h30m"} {
		u := e.unstructuredCPS(e.uniqueName("ok"), map[string]any{"image": "r.example.com/x:1", "interval": interval})
		if err := e.client.Create(e.ctx(), u, client.DryRunAll); err != nil {
			t.Errorf("interval %q refused: %v", interval, err)
		}
	}
}

// unstructuredCPS is a ClusterPullSecret with a spec.verify written as
// raw JSON, which the typed client could not send.
func (e *env) unstructuredCPS(name string, verify map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(), "kind": "ClusterPullSecret",
		"metadata": map[string]any{"name": name},
		"spec": map[string]any{
			"source": map[string]any{"namespace": e.srcNS, "name": "regcred"},
			"verify": verify,
		},
	}}
	return u
}

// Scenario 7: a ClusterPullSecret that slipped past validation (stored
// under a laxer schema) is reported and skipped; the others go on being
// served, before and after a restart of the controller.
func TestHostileClusterPullSecretNeverStopsTheOthers(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	hostile := e.uniqueName("hostile")
	words := e.unstructuredCPS(hostile, map[string]any{"image": "registry.example.com/x:1", "interval": "1 hour"})

	e.storeUnderLaxSchema(words, func() *unstructured.Unstructured {
		return e.unstructuredCPS(e.uniqueName("probe"), map[string]any{"image": "r/x:1", "interval": "1 hour"})
	}, "spec", "verify", "interval")
	e.cpsList = append(e.cpsList, hostile)

	first := e.startController()
	eventually(g, func() string {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("ClusterPullSecret"))
		if err := e.client.Get(e.ctx(), types.NamespacedName{Name: hostile}, u); err != nil {
			return err.Error()
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			if m := c.(map[string]any); m["type"] == v1alpha1.ConditionReady {
				return m["reason"].(string) + ": " + m["message"].(string)
			}
		}
		return "no Ready condition"
	}).Should(And(HavePrefix(v1alpha1.ReasonInvalidSpec+": "), ContainSubstring("cannot be read")))
	good := e.uniqueName("good")
	e.cps(good, "regcred")
	ns := e.namespace()
	eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{good}))

	first.stop()
	e.startController()
	late := e.namespace()
	eventually(g, e.pullSecretNames(late, "default")).Should(Equal([]string{good}), "a restarted controller syncs and serves")
	g.Expect(e.secret(late, hostile)()).To(BeNil(), "nothing of the unreadable one is done")
}
