package controller_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// applier is a GitOps tool syncing a ServiceAccount with server-side apply
// under its own field manager, as Argo CD (argocd-controller) and Flux
// (kustomize-controller) do: each sync applies the rendered object, with
// force, so the fields it renders are its own. render returns the
// imagePullSecrets the manifest has, or nil when it leaves the field out.
type applier struct {
	e       *env
	manager string
	ns, sa  string
	render  func(live []string) []string
	syncs   int
}

func (a *applier) sync(ctx context.Context) error {
	var live corev1.ServiceAccount
	if err := a.e.client.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: a.sa}, &live); err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ServiceAccount",
		"metadata": map[string]any{"name": a.sa, "namespace": a.ns, "labels": map[string]any{"app.kubernetes.io/managed-by": a.manager}},
	}}
	if names := a.render(pullSecretNamesOf(&live)); names != nil {
		var refs []any
		for _, n := range names {
			refs = append(refs, map[string]any{"name": n})
		}
		u.Object["imagePullSecrets"] = refs
	}
	a.syncs++
	return a.e.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(a.manager), client.ForceOwnership)
}

// every syncs each period until ctx ends.
func (a *applier) every(ctx context.Context, period time.Duration, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = a.sync(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(period):
			}
		}
	}()
}

func pullSecretNamesOf(sa *corev1.ServiceAccount) []string {
	out := []string{}
	for _, r := range sa.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}

func serviceAccountWrites(r *running) float64 { return writes(r.requests())["patch serviceaccounts"] }

// Issue 18's fight: a GitOps tool that renders imagePullSecrets: [app-own]
// and syncs every second. The controller puts its name back twice, then
// backs off: at most 10 ServiceAccount writes in 30 s; it reports the
// fight within 10 s in the status and one Event series, naming the tool's
// field manager and the fix; and once the tool stops, the name is back and
// the report ends.
func TestFightWithAGitOpsToolIsBoundedAndReported(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.serviceAccount(ns, "app")
	run := e.startController()
	name := e.uniqueName("fight")
	e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.ServiceAccounts.Names = []string{"app"} })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	before := serviceAccountWrites(run)

	argo := &applier{e: e, manager: "argocd-controller", ns: ns, sa: "app", render: func([]string) []string { return []string{"app-own"} }}
	ctx, cancel := context.WithCancel(e.ctx())
	var wg sync.WaitGroup
	start := time.Now()
	argo.every(ctx, time.Second, &wg)
	contested := func() string {
		c := e.readyCondition(name)()
		return c.Reason + ": " + c.Message
	}
	g.Eventually(contested).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(And(
		HavePrefix(v1alpha1.ReasonContested+": "), ContainSubstring("field manager argocd-controller"), ContainSubstring("RespectIgnoreDifferences")))
	t.Logf("reported after %v", time.Since(start))
	eventually(g, e.eventReasons(name)).Should(ContainElement(v1alpha1.ReasonContested))
	time.Sleep(time.Until(start.Add(30 * time.Second)))
	cancel()
	wg.Wait()
	fought := serviceAccountWrites(run) - before
	t.Logf("30 s of a 1 s sync (%d syncs): %v ServiceAccount writes by the controller", argo.syncs, fought)
	g.Expect(argo.syncs).To(BeNumerically(">=", 25), "the fight happened")
	g.Expect(fought).To(BeNumerically(">=", 2), "the controller did put its name back")
	g.Expect(fought).To(BeNumerically("<=", 10))

	// The tool stopped: the name is back at the next try, and the report
	// ends after a quiet minute.
	g.Eventually(e.pullSecretNames(ns, "app")).WithTimeout(6 * time.Minute).WithPolling(time.Second).Should(ContainElement(name))
	g.Eventually(e.readyCondition(name)).WithTimeout(3 * time.Minute).WithPolling(time.Second).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.pullSecretNames(ns, "app")()).To(ContainElements("app-own", name), "the tool's own name is kept")
	events := len(slices.DeleteFunc(e.eventReasons(name)(), func(r string) bool { return r != v1alpha1.ReasonContested }))
	g.Expect(events).To(Equal(1), "one Event series")
}

// The recipes of docs/gitops.md, tried with server-side apply under the
// tools' field managers: no fight, and no ServiceAccount write after the
// first.
func TestGitOpsRecipesEndTheFight(t *testing.T) {
	e := newEnv(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	e.installPodInjection()
	run := e.startController()
	for _, tc := range []struct {
		name    string
		manager string
		pods    bool
		render  func(live []string) []string
	}{
		// Argo CD: ignoreDifferences on /imagePullSecrets with
		// RespectIgnoreDifferences=true applies the live list.
		{name: "argo-respect", manager: "argocd-controller", render: func(live []string) []string { return live }},
		// Flux (or Argo CD): the rendered ServiceAccount leaves
		// imagePullSecrets out; server-side apply then leaves it alone.
		{name: "flux-omit", manager: "kustomize-controller", render: func([]string) []string { return nil }},
		// Pods mode: the tool owns the whole list; the controller writes
		// no ServiceAccount at all.
		{name: "pods-mode", manager: "argocd-controller", pods: true, render: func([]string) []string { return []string{"app-own"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := e.namespace()
			e.serviceAccount(ns, "app")
			tool := &applier{e: e, manager: tc.manager, ns: ns, sa: "app", render: tc.render}
			g.Expect(tool.sync(e.ctx())).To(Succeed())
			name := e.uniqueName(tc.name)
			e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) {
				c.Spec.ServiceAccounts.Names = []string{"app"}
				c.Spec.Namespaces.Include = []string{ns}
				if tc.pods {
					c.Spec.AttachTo = v1alpha1.AttachToPods
				}
			})
			eventually(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
			settled := serviceAccountWrites(run)
			ctx, cancel := context.WithCancel(e.ctx())
			var wg sync.WaitGroup
			tool.every(ctx, 500*time.Millisecond, &wg)
			consistently(g, e.conditionOf(name, v1alpha1.ConditionReady)).Should(HavePrefix(v1alpha1.ReasonReady + ":"))
			time.Sleep(3 * time.Second)
			cancel()
			wg.Wait()
			g.Expect(tool.syncs).To(BeNumerically(">=", 5))
			g.Expect(serviceAccountWrites(run)).To(Equal(settled), "no ServiceAccount write while the tool syncs")
			if tc.pods {
				pod, err := e.createPod(ns, "web", "app", nil, "registry.example.com/team/app:1")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(pullSecretsOf(pod)).To(Equal([]string{"app-own", name}), "the tool's name from the ServiceAccount, ours from the policy")
			} else {
				g.Expect(e.pullSecretNames(ns, "app")()).To(ContainElement(name))
			}
		})
	}
}
