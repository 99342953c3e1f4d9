package planner_test

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/selection"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// registry is the registry every test credential is for.
const registry = "reg.example.com/"

func forRegistry(image string) bool { return strings.HasPrefix(image, registry) }

func selector(t testing.TB, spec v1alpha1.ClusterPullSecretSpec) *selection.Selector {
	t.Helper()
	s, err := selection.New(&spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cps is a ClusterPullSecret selecting every namespace and ServiceAccount,
// created age seconds after epoch.
func cps(t testing.TB, name string, age int, mutate ...func(*planner.ClusterPullSecret)) planner.ClusterPullSecret {
	t.Helper()
	c := planner.ClusterPullSecret{
		Name: name, UID: "uid-" + name, Created: epoch.Add(time.Duration(age) * time.Second),
		Selector: selector(t, v1alpha1.ClusterPullSecretSpec{}), SecretName: name,
		Source: planner.Source{Hash: "hash-" + name, Matches: forRegistry},
	}
	for _, m := range mutate {
		m(&c)
	}
	return c
}

func named(secret string) func(*planner.ClusterPullSecret) {
	return func(c *planner.ClusterPullSecret) { c.SecretName = secret }
}

func restarting(c *planner.ClusterPullSecret) { c.RestartPods = true }

func onlyServiceAccounts(t testing.TB, names ...string) func(*planner.ClusterPullSecret) {
	return func(c *planner.ClusterPullSecret) {
		c.Selector = selector(t, v1alpha1.ClusterPullSecretSpec{ServiceAccounts: v1alpha1.ServiceAccountSelector{Names: names}})
	}
}

func onlyNamespacesLabelled(t testing.TB, key, value string) func(*planner.ClusterPullSecret) {
	return func(c *planner.ClusterPullSecret) {
		c.Selector = selector(t, v1alpha1.ClusterPullSecretSpec{Namespaces: v1alpha1.NamespaceSelector{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{key: value}},
		}})
	}
}

// copyOf is a proven, current copy of c named name.
func copyOf(c planner.ClusterPullSecret, name string) planner.Copy {
	return planner.Copy{Name: name, UID: "secret-" + name, Owner: c.Name, OwnerUID: c.UID, Hash: c.Source.Hash, Proven: true}
}

func sa(name string, list []string, record map[string]string) planner.ServiceAccount {
	return planner.ServiceAccount{Name: name, UID: "sa-" + name, PullSecrets: list, Record: record}
}

func snapshot(cs []planner.ClusterPullSecret, copies []planner.Copy, sas ...planner.ServiceAccount) planner.Snapshot {
	return planner.Snapshot{
		Namespace:          planner.Namespace{Name: "shop", Labels: map[string]string{"team": "shop"}},
		ClusterPullSecrets: cs, Copies: copies, ServiceAccounts: sas, Now: epoch.Add(time.Hour),
	}
}

// converge applies plans until one writes nothing, as the reconciler does
// when every write succeeds, and returns the last snapshot and plan.
func converge(t testing.TB, s planner.Snapshot) (planner.Snapshot, planner.Plan) {
	t.Helper()
	for range 10 {
		p := planner.Compute(s)
		if p.Empty() {
			return s, p
		}
		for i := range p.CreateCopies {
			p.CreateCopies[i].UID = "secret-" + p.CreateCopies[i].Name
		}
		s = planner.After(s, p)
	}
	t.Fatalf("no fixpoint after 10 plans")
	return s, planner.Plan{}
}

func list(s planner.Snapshot, name string) []string {
	for _, sa := range s.ServiceAccounts {
		if sa.Name == name {
			return sa.PullSecrets
		}
	}
	return nil
}

func copyNames(s planner.Snapshot) []string {
	var out []string
	for _, k := range s.Copies {
		out = append(out, k.Name)
	}
	return out
}

func labelSelector(key, value string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{key: value}}
}

func secondsOf(n int) time.Duration { return time.Duration(n) * time.Second }
