package controller_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// namespaces creates n selected namespaces in parallel.
func (e *env) namespaces(n int) []string {
	e.t.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = e.namespace()
		}()
	}
	wg.Wait()
	return out
}

func (e *env) countCopies(name string) int {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := e.client.List(context.Background(), list, client.MatchingLabels{v1alpha1.OwnerLabel: name}); err != nil {
		return -1
	}
	return len(list.Items)
}

// A controller restarted in the middle of a rollout converges, with no
// duplicate entries.
func TestRestartMidRolloutConverges(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	namespaces := e.namespaces(40)
	first := e.startController(func(o *manager.Options) { o.Controller.Workers = 2 })
	name := e.uniqueName("restart")
	e.cps(name, "regcred")
	eventually(g, func() int { return e.countCopies(name) }).Should(BeNumerically(">=", 5))
	first.stop()
	t.Logf("stopped the controller with %d of %d copies made", e.countCopies(name), len(namespaces))

	e.startController()
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	for _, ns := range namespaces {
		g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{name}), "namespace %s", ns)
	}
	g.Expect(e.countCopies(name)).To(Equal(len(namespaces)))
}

// A controller restarted over a converged fleet writes nothing: no copy, no
// ServiceAccount, and no status patch while the namespaces report one by one
// (a partial count would first turn Ready into Progressing and back).
func TestRestartOfConvergedControllerWritesNothing(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	namespaces := e.namespaces(40)
	first := e.startController()
	name := e.uniqueName("warm")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	eventually(g, func() int32 { return e.status(name).Namespaces.Ready }).Should(BeEquivalentTo(len(namespaces)))
	first.stop()
	before := e.status(name)

	second := e.startController(func(o *manager.Options) { o.Controller.Workers = 1 })
	// Caches started (client-go lists through watches) and the pod-injection
	// policy looked up (its binding too, when another test installed it),
	// then quiet.
	eventually(g, second.requests).Should(And(HaveKey("watch clusterpullsecrets"), HaveKey("watch namespaces"), HaveKey("watch serviceaccounts"),
		HaveKey("get mutatingadmissionpolicies")))
	eventually(g, func() bool {
		before := second.requests()
		time.Sleep(500 * time.Millisecond)
		return reflect.DeepEqual(before, second.requests())
	}).Should(BeTrue())
	consistently(g, second.requests).Should(Equal(second.requests()))
	g.Expect(writes(second.requests())).To(BeEmpty(), "a warm restart writes nothing")
	g.Expect(e.status(name)).To(Equal(before))
}

// Another writer editing the same ServiceAccounts at the same time loses
// none of its entries: every write is a read-merge-update with the
// resourceVersion. The writers keep writing until the controller's name is
// in, so the controller's updates meet newer versions; the test checks that
// they did (the controller re-reads a ServiceAccount only after a conflict).
func TestConcurrentWriterLosesNothing(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	namespaces := e.namespaces(10)
	run := e.startController()
	name := e.uniqueName("race")

	store := serviceaccount.ClientsetStore{Client: e.c.Client}
	var wg sync.WaitGroup
	errs := make(chan error, len(namespaces))
	written := make([]int, len(namespaces))
	for i, ns := range namespaces {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				sa, err := e.c.Client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
				if err != nil {
					errs <- err
					return
				}
				if serviceaccount.Has(sa, name) || n == 2000 {
					return
				}
				_, _, err = serviceaccount.Update(context.Background(), store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
					return serviceaccount.Attach(sa, fmt.Sprintf("writer-%d", n)), nil
				})
				if err != nil {
					errs <- err
					return
				}
				written[i] = n + 1
			}
		}()
	}
	e.cps(name, "regcred")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	for i, ns := range namespaces {
		got := e.pullSecretNames(ns, "default")()
		for n := range written[i] {
			g.Expect(got).To(ContainElement(fmt.Sprintf("writer-%d", n)), "namespace %s", ns)
		}
		g.Expect(got).To(ContainElement(name))
		g.Expect(got).To(HaveLen(written[i]+1), "no duplicates in %s: %v", ns, got)
	}
	conflicts := run.requests()["get serviceaccounts"]
	t.Logf("the controller met %v update conflicts over %d namespaces", conflicts, len(namespaces))
	g.Expect(conflicts).To(BeNumerically(">", 0), "the race did not happen: no update of the controller's met a newer version")
}

// With two replicas, only the elected leader writes.
func TestOnlyTheLeaderWrites(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	namespaces := e.namespaces(3)
	leaderElection := func(o *manager.Options) {
		o.LeaderElect = true
		o.LeaderElectionID = "pullsecrets-" + e.srcNS
	}
	a := e.startController(leaderElection)
	b := e.startController(leaderElection)
	name := e.uniqueName("leader")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	for _, ns := range namespaces {
		g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{name}))
	}

	// Lease writes are the election itself; everything else is work.
	work := func(r *running) float64 {
		total := 0.0
		for k, v := range writes(r.requests()) {
			if !strings.HasSuffix(k, " leases") {
				total += v
			}
		}
		return total
	}
	wa, wb := work(a), work(b)
	t.Logf("writes: replica a %v (%v), replica b %v (%v)", wa, writes(a.requests()), wb, writes(b.requests()))
	g.Expect([]float64{wa, wb}).To(ContainElement(BeZero()), "one replica stands by")
	g.Expect(wa + wb).To(BeNumerically(">", 0))
}

// At 1,000 namespaces the controller makes exactly the minimal writes: one
// create per copy and one patch per ServiceAccount, plus a constant number
// of writes for the ClusterPullSecret itself (finalizer, paced status).
func TestWritesAreMinimalAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	const n = 1000
	namespaces := e.namespaces(n)
	// An installed controller has its key already; its first start's one
	// create is not a reconcile write.
	if _, err := ownership.LoadOrCreateKey(e.ctx(), e.client, e.client, e.srcNS); err != nil {
		t.Fatal(err)
	}
	run := e.startController()
	name := e.uniqueName("scale")
	start := time.Now()
	e.cps(name, "regcred")
	g.Eventually(e.readyCondition(name)).WithTimeout(5 * time.Minute).WithPolling(200 * time.Millisecond).Should(HaveField("Status", metav1.ConditionTrue))
	t.Logf("converged over %d namespaces in %v", n, time.Since(start))
	settled := func() map[string]float64 { return writes(run.requests()) }
	consistently(g, settled).Should(Equal(settled()))

	w := settled()
	t.Logf("writes: %v", w)
	g.Expect(w["create secrets"]).To(BeEquivalentTo(n), "one create per copy")
	g.Expect(w["patch serviceaccounts"]).To(BeEquivalentTo(n), "one patch per ServiceAccount")
	g.Expect(w).NotTo(HaveKey("patch secrets"))
	g.Expect(w).NotTo(HaveKey("delete secrets"))
	other := 0.0
	for k, v := range w {
		if k != "create secrets" && k != "patch serviceaccounts" {
			other += v
		}
	}
	g.Expect(other).To(BeNumerically("<", 50), "ClusterPullSecret writes do not grow with the namespaces: %v", w)
	for _, ns := range namespaces[:10] {
		var sa corev1.ServiceAccount
		g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "default"}, &sa)).To(Succeed())
		g.Expect(sa.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: name}}))
	}
}
