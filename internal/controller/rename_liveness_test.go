package controller_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
)

// Liveness (issue 19): every rename completes, and a name one
// ClusterPullSecret lets go while another holds it is handed over, never
// dropped in between.

// A ClusterPullSecret renamed y -> x where the ServiceAccount already lists
// x by hand: x gets our copy, y is detached and retired, the state is Ready
// with nothing retiring, and x stays the user's (deleting the
// ClusterPullSecret leaves it listed).
func TestRenameOntoANameListedByHandCompletes(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	name := e.uniqueName("byhand")
	cps := e.cps(name, "regcred", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "y" })
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"y"}))
	e.setPullSecrets(ns, "default", "x", "y") // x by hand; no Secret x exists yet

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "x" })
	eventually(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"x"}))
	eventually(g, e.secret(ns, "y")).Should(BeNil(), "the old copy is retired: nothing uses it")
	g.Expect(e.secret(ns, "x")()).To(HaveField("Labels", HaveKeyWithValue(v1alpha1.OwnerLabel, name)))
	eventually(g, func() v1alpha1.ClusterPullSecretStatus { return e.status(name) }).Should(And(
		HaveField("SecretName", "x"), HaveField("Retiring", BeEmpty()), HaveField("PendingRetirement", BeZero()),
		HaveField("ServiceAccountsAttached", BeEquivalentTo(1))))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.attachedRecord(ns, "default")).NotTo(ContainSubstring(`"x"`), "a name listed by hand is never recorded")

	g.Expect(e.client.Delete(e.ctx(), cps)).To(Succeed())
	eventually(g, func() bool {
		var obj v1alpha1.ClusterPullSecret
		return e.client.Get(e.ctx(), types.NamespacedName{Name: name}, &obj) != nil
	}).Should(BeTrue())
	g.Expect(e.secret(ns, "x")()).To(BeNil(), "our copy goes with the ClusterPullSecret")
	consistently(g, e.pullSecretNames(ns, "default")).Should(Equal([]string{"x"}), "the user's name stays")
}

// The ServiceAccount lists reg, recorded for the newer ClusterPullSecret,
// while the copy reg is the older one's (the newer one's copy was deleted
// by hand and the older one, first in line, made it again). Deleting the
// newer one hands reg over to the older one in one write: no version of the
// ServiceAccount lacks it.
func TestANameLetGoIsHandedOverWithoutAGap(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("a", "a.example.com", "ci", "pw")
	e.source("b", "b.example.com", "ci", "pw")
	ns := e.namespace()
	e.startController()
	older, newer := e.uniqueName("older"), e.uniqueName("newer")
	e.cps(older, "a", func(c *v1alpha1.ClusterPullSecret) {
		c.Spec.SecretName = "reg"
		c.Spec.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"nothing": "here"}}
	})
	time.Sleep(1100 * time.Millisecond) // creation timestamps have a one-second resolution
	newerObj := e.cps(newer, "b", func(c *v1alpha1.ClusterPullSecret) { c.Spec.SecretName = "reg" })
	eventually(g, e.readyCondition(newer)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.attachedRecord(ns, "default")).To(ContainSubstring(newer))

	e.setSpec(older, func(s *v1alpha1.ClusterPullSecretSpec) {
		s.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: e.label}
	})
	eventually(g, e.readyCondition(older)).Should(HaveField("Reason", v1alpha1.ReasonConflict))
	g.Expect(e.client.Delete(e.ctx(), e.secret(ns, "reg")())).To(Succeed())
	eventually(g, e.secret(ns, "reg")).Should(HaveField("Labels", HaveKeyWithValue(v1alpha1.OwnerLabel, older)))
	eventually(g, e.readyCondition(older)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.attachedRecord(ns, "default")).To(ContainSubstring(newer), "reg stays recorded for the newer one, whose name it still is")

	versions := e.watchPullSecrets(ns, "default")
	g.Expect(e.client.Delete(e.ctx(), newerObj)).To(Succeed())
	handedOver := func(v saVersion) bool {
		return strings.Contains(v.record, older) && !strings.Contains(v.record, newer)
	}
	eventually(g, versions).Should(ContainElement(Satisfy(handedOver)))
	g.Expect(e.pullSecretNames(ns, "default")()).To(Equal([]string{"reg"}))
	g.Expect(e.readyCondition(older)()).To(HaveField("Status", metav1.ConditionTrue))
	for _, v := range versions() {
		g.Expect(v.names).To(ContainElement("reg"), "a version of the ServiceAccount without reg: %+v", versions())
	}
}

// attachedRecord is the ServiceAccount's record of attached names, raw.
func (e *env) attachedRecord(ns, sa string) string {
	e.t.Helper()
	var obj corev1.ServiceAccount
	if err := e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: sa}, &obj); err != nil {
		e.t.Fatal(err)
	}
	return obj.Annotations[v1alpha1.AttachedAnnotation]
}

// saVersion is one written version of a ServiceAccount.
type saVersion struct {
	names  []string
	record string
}

// watchPullSecrets watches a ServiceAccount from its current version on and
// returns a function giving every version written since, in order.
func (e *env) watchPullSecrets(ns, name string) func() []saVersion {
	e.t.Helper()
	wc, err := client.NewWithWatch(e.c.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		e.t.Fatal(err)
	}
	var current corev1.ServiceAccount
	if err := e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: name}, &current); err != nil {
		e.t.Fatal(err)
	}
	w, err := wc.Watch(e.ctx(), &corev1.ServiceAccountList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{FieldSelector: "metadata.name=" + name, ResourceVersion: current.ResourceVersion}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(w.Stop)
	var (
		mu   sync.Mutex
		seen []saVersion
	)
	go func() {
		for ev := range w.ResultChan() {
			sa, ok := ev.Object.(*corev1.ServiceAccount)
			if !ok || ev.Type != watch.Modified {
				continue
			}
			v := saVersion{names: []string{}, record: sa.Annotations[v1alpha1.AttachedAnnotation]}
			for _, r := range sa.ImagePullSecrets {
				v.names = append(v.names, r.Name)
			}
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
		}
	}()
	return func() []saVersion {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}
