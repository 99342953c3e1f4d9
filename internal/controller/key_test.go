package controller_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
)

// Issue 19: a key that cannot silently go missing, against the real API
// server and the controller's generated RBAC.

func (e *env) keySecret() func() *corev1.Secret {
	return e.secret(e.srcNS, v1alpha1.OwnershipKeySecretName)
}

// ring reads the key Secret's ring (nil when there is none).
func (e *env) ring() *ownership.Ring {
	s := e.keySecret()()
	if s == nil {
		return nil
	}
	r, err := ownership.RingFromSecret(s)
	if err != nil {
		return nil
	}
	return r
}

// copyProvenBy reports whether the copy's proof is the ring's signing
// key's.
func (e *env) copySignedBy(ns, name string, r *ownership.Ring) bool {
	s := e.secret(ns, name)()
	if s == nil || r == nil {
		return false
	}
	valid, current := ownership.CopyProven(r, ns, name, s.Labels, s.Annotations)
	return valid && current
}

func (e *env) rotateSource(name, server, user, password string) {
	e.t.Helper()
	var s corev1.Secret
	if err := e.client.Get(e.ctx(), types.NamespacedName{Namespace: e.srcNS, Name: name}, &s); err != nil {
		e.t.Fatal(err)
	}
	s.Data = map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(e.t, server, user, password)}
	if err := e.client.Update(e.ctx(), &s); err != nil {
		e.t.Fatal(err)
	}
}

// metric is the value of a gauge or counter of the controller's registry
// with the given label pairs (0 when absent).
func (r *running) metric(name string, labels ...string) float64 {
	families, _ := r.registry.Gather()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// eventReasonsIn lists the reasons of Events about an object of ns.
func (e *env) eventReasonsIn(ns, name string) func() []string {
	return func() []string {
		var list eventsv1.EventList
		if err := e.client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return []string{"error: " + err.Error()}
		}
		var reasons []string
		for _, ev := range list.Items {
			if ev.Regarding.Name == name {
				reasons = append(reasons, ev.Reason)
			}
		}
		return reasons
	}
}

// A key Secret deleted under a running controller is made again from its
// memory, with the same key, and nothing else changes: every copy stays
// proven, nothing is rewritten, the ClusterPullSecret stays Ready.
func TestAKeyDeletedWhileRunningIsRestored(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	namespaces := e.namespaces(2)
	run := e.startController()
	name := e.uniqueName("keep")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	before := e.keySecret()()
	g.Expect(before).NotTo(BeNil())
	copies := map[string]types.UID{}
	for _, ns := range namespaces {
		copies[ns] = e.secret(ns, name)().UID
	}
	settled := writes(run.requests())

	g.Expect(e.client.Delete(e.ctx(), before)).To(Succeed())
	eventually(g, func() []byte {
		if s := e.keySecret()(); s != nil && s.UID != before.UID {
			return s.Data[v1alpha1.OwnershipKeyDataKey]
		}
		return nil
	}).Should(Equal(before.Data[v1alpha1.OwnershipKeyDataKey]), "restored from memory, the same key")
	eventually(g, e.eventReasonsIn(e.srcNS, v1alpha1.OwnershipKeySecretName)).Should(ContainElement(v1alpha1.ReasonOwnershipKey))
	g.Expect(run.metric("pullsecrets_ownership_key_events_total", "event", "restored")).To(BeEquivalentTo(1))

	consistently(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	for _, ns := range namespaces {
		g.Expect(e.secret(ns, name)().UID).To(Equal(copies[ns]))
	}
	after := writes(run.requests())
	g.Expect(after["create secrets"]).To(Equal(settled["create secrets"]+1), "the key Secret is the only thing made")
	g.Expect(after["patch secrets"]).To(Equal(settled["patch secrets"]), "no copy rewritten")
	g.Expect(after["patch serviceaccounts"]).To(Equal(settled["patch serviceaccounts"]), "no ServiceAccount rewritten")

	// And a restart with it finds everything proven.
	run.stop()
	e.startController()
	e.rotateSource("regcred", "registry.example.com", "ci", "rotated")
	for _, ns := range namespaces {
		eventually(g, func() string { return e.copyCredential(ns, name) }).Should(Equal("ci:rotated"))
	}
}

// The key lost while the controller is down: at the next start it makes
// no new key (that would orphan every copy), writes nothing, and says why
// with the key's name and the one recovery command; a rotation meanwhile
// reaches no copy. The recovery command makes a new key that adopts the
// copies marked for live ClusterPullSecrets: every copy gets the rotated
// credential within 60 s, in place, and the records are signed again.
func TestKeyLostThenRestartThenRotation(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "first")
	namespaces := e.namespaces(3)
	run := e.startController()
	name := e.uniqueName("lost")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	copies := map[string]types.UID{}
	for _, ns := range namespaces {
		copies[ns] = e.secret(ns, name)().UID
	}
	run.stop()
	g.Expect(e.client.Delete(e.ctx(), e.keySecret()())).To(Succeed()) // lost: no backup

	run = e.startController()
	eventually(g, e.readyCondition(name)).Should(And(
		HaveField("Reason", v1alpha1.ReasonOwnershipKeyMissing),
		HaveField("Message", ContainSubstring(e.srcNS+"/"+v1alpha1.OwnershipKeySecretName)),
		HaveField("Message", ContainSubstring("--from-literal=recover=adopt-marked"))))
	g.Expect(run.metric("pullsecrets_ownership_key_ready")).To(BeZero())
	g.Expect(run.metric("pullsecrets_ownership_marks_without_key")).To(BeNumerically(">=", 6), "3 copies and 3 records")
	e.rotateSource("regcred", "registry.example.com", "ci", "second")
	consistently(g, e.keySecret()).Should(BeNil(), "no key is made silently")
	for _, ns := range namespaces {
		g.Expect(e.copyCredential(ns, name)).To(Equal("ci:first"), "nothing is written without the key")
	}

	// The documented recovery, as kubectl would send it.
	start := time.Now()
	g.Expect(e.client.Create(e.ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.srcNS, Name: v1alpha1.OwnershipKeySecretName},
		Type:       v1alpha1.OwnershipKeySecretType,
		Data:       map[string][]byte{ownership.RecoverDataKey: []byte(ownership.RecoverAdoptMarked)},
	})).To(Succeed())
	for _, ns := range namespaces {
		g.Eventually(func() string { return e.copyCredential(ns, name) }).WithTimeout(60*time.Second).WithPolling(100*time.Millisecond).
			Should(Equal("ci:second"), "every copy current within 60 s")
		g.Expect(e.secret(ns, name)().UID).To(Equal(copies[ns]), "adopted in place, not made again")
	}
	t.Logf("every copy current %v after the recovery command", time.Since(start))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	ring := e.ring()
	g.Expect(ring).NotTo(BeNil())
	for _, ns := range namespaces {
		g.Expect(e.copySignedBy(ns, name, ring)).To(BeTrue(), "signed with the new key")
		var sa corev1.ServiceAccount
		g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "default"}, &sa)).To(Succeed())
		_, err := ownership.ReadRecord(&sa, ring)
		g.Expect(err).NotTo(HaveOccurred(), "the record is signed again")
	}
}

// ServiceAccounts recreated by a restore (new UIDs, the same list and
// record): the controller takes the record again (every entry is a name
// it would attach there itself), so the ServiceAccount is not left alone,
// and a rename still detaches the old name.
func TestServiceAccountsRecreatedByARestore(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	e.serviceAccount(ns, "app", "theirs")
	e.startController()
	name := e.uniqueName("restore")
	e.cps(name, "regcred")
	eventually(g, e.pullSecretNames(ns, "app")).Should(Equal([]string{"theirs", name}))
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	var old corev1.ServiceAccount
	g.Expect(e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "app"}, &old)).To(Succeed())
	g.Expect(e.client.Delete(e.ctx(), &old)).To(Succeed())
	restored := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app", Annotations: old.Annotations}, ImagePullSecrets: old.ImagePullSecrets}
	g.Expect(e.client.Create(e.ctx(), restored)).To(Succeed())
	g.Expect(restored.UID).NotTo(Equal(old.UID))

	eventually(g, func() string {
		var sa corev1.ServiceAccount
		if err := e.client.Get(e.ctx(), types.NamespacedName{Namespace: ns, Name: "app"}, &sa); err != nil {
			return err.Error()
		}
		return sa.Annotations[v1alpha1.AttachedProofAnnotation]
	}).ShouldNot(Equal(old.Annotations[v1alpha1.AttachedProofAnnotation]), "the record is signed again for the new UID")
	consistently(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))

	e.setSpec(name, func(s *v1alpha1.ClusterPullSecretSpec) { s.SecretName = "renamed" })
	eventually(g, e.pullSecretNames(ns, "app")).Should(Equal([]string{"theirs", "renamed"}), "the old name is ours again: detached")
}

// Two replicas across a key replacement and a failover: the leader keeps
// the replaced key for checking, signs everything again with the new
// one, and the standby, once leader, proves every copy and carries on.
func TestTwoReplicasAcrossAKeyReplacementAndAFailover(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "first")
	namespaces := e.namespaces(3)
	leaderElection := func(o *manager.Options) {
		o.LeaderElect = true
		o.LeaderElectionID = "pullsecrets-" + e.srcNS
	}
	a := e.startController(leaderElection)
	b := e.startController(leaderElection)
	name := e.uniqueName("failover")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	leader, standby := a, b
	if a.metric("pullsecrets_ownership_key_events_total", "event", "created") == 0 {
		leader, standby = b, a
	}
	k1 := e.ring().Signing()

	// Someone replaces the key Secret with another key.
	fresh := make([]byte, ownership.KeySize)
	_, _ = rand.Read(fresh)
	s := e.keySecret()()
	s.Data = map[string][]byte{v1alpha1.OwnershipKeyDataKey: fresh}
	g.Expect(e.client.Update(e.ctx(), s)).To(Succeed())
	eventually(g, func() bool { r := e.ring(); return r != nil && r.Has(k1) && !r.Signing().Equal(k1) }).Should(BeTrue(),
		"the replaced key is kept for checking")
	ring := e.ring()
	g.Expect(bytes.Equal(fresh, ring.Data()[v1alpha1.OwnershipKeyDataKey])).To(BeTrue())
	for _, ns := range namespaces {
		eventually(g, func() bool { return e.copySignedBy(ns, name, ring) }).Should(BeTrue(), "signed again with the new key")
	}

	// Failover.
	leader.stop()
	e.rotateSource("regcred", "registry.example.com", "ci", "second")
	for _, ns := range namespaces {
		eventually(g, func() string { return e.copyCredential(ns, name) }).Should(Equal("ci:second"))
	}
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(standby.metric("pullsecrets_ownership_key_ready")).To(BeEquivalentTo(1))
	g.Expect(e.ring().Signing().Equal(ring.Signing())).To(BeTrue(), "the new leader made no other key")
}

// The key namespace missing at start: no panic, nothing written, the
// condition says why; once the namespace exists the key is made and every
// namespace served.
func TestKeyNamespaceMissingAtStart(t *testing.T) {
	e := newEnv(t)
	g := NewWithT(t)
	e.source("regcred", "registry.example.com", "ci", "pw")
	ns := e.namespace()
	keyNS := "keys-" + strings.TrimPrefix(e.srcNS, "t-")
	keyNS = keyNS[:min(len(keyNS), 63)]
	// The deployment binds the controller's Role in its own namespace; the
	// test lets it read Secrets anywhere, so that only the missing
	// namespace is in the way.
	e.createOrKeep(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secrets-reader-" + keyNS},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}}}})
	e.createOrKeep(&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secrets-reader-" + keyNS},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "secrets-reader-" + keyNS},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: controllerUser}}})
	t.Cleanup(func() {
		_ = e.client.Delete(context.Background(), &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "secrets-reader-" + keyNS}})
		_ = e.client.Delete(context.Background(), &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secrets-reader-" + keyNS}})
		_ = e.client.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: keyNS}})
	})
	run := e.startController(func(o *manager.Options) { o.Controller.KeyNamespace = keyNS })
	name := e.uniqueName("nskey")
	e.cps(name, "regcred")
	eventually(g, e.readyCondition(name)).Should(And(HaveField("Reason", v1alpha1.ReasonOwnershipKeyMissing),
		HaveField("Message", ContainSubstring(keyNS))))
	consistently(g, e.secret(ns, name)).Should(BeNil())
	g.Expect(run.metric("pullsecrets_ownership_key_ready")).To(BeZero())

	g.Expect(e.client.Create(e.ctx(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: keyNS}})).To(Succeed())
	g.Eventually(e.secret(keyNS, v1alpha1.OwnershipKeySecretName)).WithTimeout(45 * time.Second).ShouldNot(BeNil())
	eventually(g, e.readyCondition(name)).Should(HaveField("Status", metav1.ConditionTrue))
	g.Expect(e.secret(ns, name)()).NotTo(BeNil())
	g.Expect(controllerLogs.String()).NotTo(ContainSubstring("panic"))
}
