package admission

import (
	"context"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
	"github.com/pullsecrets/pullsecrets/test/internal/deploytest"
)

// cps is a ClusterPullSecret selecting namespaces as sel does.
func cps(name string, sel v1alpha1.NamespaceSelector) *v1alpha1.ClusterPullSecret {
	return &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.ClusterPullSecretSpec{
			Source:     v1alpha1.SourceReference{Namespace: "pullsecrets-system", Name: "registry-credentials"},
			Namespaces: sel,
		},
	}
}

var (
	teamA      = v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}
	everything = v1alpha1.NamespaceSelector{}
)

// adminCPS has a cluster administrator make a ClusterPullSecret.
func (e *env) adminCPS(t *testing.T, sel v1alpha1.NamespaceSelector) *v1alpha1.ClusterPullSecret {
	t.Helper()
	c := cps(e.name("cps"), sel)
	must(t, e.admin.Create(context.Background(), c), "create ClusterPullSecret")
	return c
}

func broadSelectionCases() []policyCase {
	const denied = "broad-selection"
	creates := []struct {
		name   string
		sel    v1alpha1.NamespaceSelector
		broad  bool
		member bool
	}{
		{name: "a label selector", sel: teamA},
		{name: "an include glob with a prefix", sel: v1alpha1.NamespaceSelector{Include: []string{"shop-*"}}},
		{name: "a match-expressions selector", sel: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists}}}}},
		{name: "a wildcard include narrowed by a selector", sel: v1alpha1.NamespaceSelector{Include: []string{"*"}, Selector: teamA.Selector}},
		{name: "no namespace selection at all", sel: everything, broad: true},
		{name: "an empty label selector", sel: v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{}}, broad: true},
		{name: "only excludes", sel: v1alpha1.NamespaceSelector{Exclude: []string{"*-sandbox"}}, broad: true},
		{name: "include *", sel: v1alpha1.NamespaceSelector{Include: []string{"shop-*", "*"}}, broad: true},
		{name: "include ?*", sel: v1alpha1.NamespaceSelector{Include: []string{"?*"}}, broad: true},
		{name: "include kube-system", sel: v1alpha1.NamespaceSelector{Include: []string{"kube-system"}}, broad: true},
		{name: "include kube-public with a selector", sel: v1alpha1.NamespaceSelector{Include: []string{"kube-public"}, Selector: teamA.Selector}, broad: true},
		{name: "include kube-node-lease", sel: v1alpha1.NamespaceSelector{Include: []string{"kube-node-lease"}}, broad: true},
		{name: "no namespace selection at all", sel: everything, broad: true, member: true},
		{name: "include kube-system", sel: v1alpha1.NamespaceSelector{Include: []string{"kube-system"}}, broad: true, member: true},
	}
	var cases []policyCase
	for _, c := range creates {
		as, who := "platform", "a user"
		if c.member {
			as, who = "platform-admin", "a platform admin"
		}
		tc := policyCase{name: who + " creates a ClusterPullSecret with " + c.name, as: as, prepare: func(t *testing.T, e *env) request {
			return create(cps(e.name("cps"), c.sel))
		}}
		if c.broad && !c.member {
			tc.deniedBy = denied
		}
		cases = append(cases, tc)
	}
	return append(cases,
		policyCase{name: "a user widens a ClusterPullSecret to every namespace", as: "platform", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, teamA), func(c *v1alpha1.ClusterPullSecret) { c.Spec.Namespaces = everything })
		}},
		policyCase{name: "a user changes the source of a ClusterPullSecret for every namespace", as: "platform", deniedBy: denied, prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, everything), func(c *v1alpha1.ClusterPullSecret) { c.Spec.Source.Name = "other-credentials" })
		}},
		policyCase{name: "a user labels a ClusterPullSecret for every namespace", as: "platform", prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, everything), func(c *v1alpha1.ClusterPullSecret) { c.Labels = map[string]string{"owner": "platform"} })
		}},
		policyCase{name: "a user narrows a ClusterPullSecret for every namespace", as: "platform", prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, everything), func(c *v1alpha1.ClusterPullSecret) { c.Spec.Namespaces = teamA })
		}},
		policyCase{name: "a platform admin widens a ClusterPullSecret to every namespace", as: "platform-admin", prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, teamA), func(c *v1alpha1.ClusterPullSecret) { c.Spec.Namespaces = everything })
		}},
		policyCase{name: "a user adds a finalizer to a ClusterPullSecret for every namespace", as: "platform", prepare: func(t *testing.T, e *env) request {
			return update(e.adminCPS(t, everything), func(c *v1alpha1.ClusterPullSecret) { c.Finalizers = []string{v1alpha1.Finalizer} })
		}},
	)
}

func TestBroadSelectionPolicy(t *testing.T) {
	c := testcluster.Get(t)
	admin := deploytest.Client(t, c.Config)
	deploytest.AggregateBuiltinRoles(t, admin)
	writer := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "clusterpullsecret-writer"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"clusterpullsecrets"},
			Verbs: []string{"get", "create", "update", "patch"}}},
	}
	if err := admin.Create(context.Background(), writer); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "clusterpullsecret-writer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: writer.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "platform"}},
	}
	if err := admin.Create(context.Background(), binding); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	installs := []installation{
		{
			// The CRD and the component: config/default is another test's.
			name: "kustomize", namespace: "pullsecrets-broad", policies: []string{"broad-selection"},
			objs: deploytest.Decode(t, deploytest.Kustomize(t, "config/crd", "config/policy-broad-selection")),
		},
		{
			name: "helm", namespace: "pullsecrets-broad-helm", prefix: "pullsecrets-", policies: append([]string{"broad-selection"}, shipped...),
			objs: deploytest.Decode(t, deploytest.HelmTemplate(t, "pullsecrets-broad-helm", "--set", "admissionPolicy.restrictBroadSelection.enabled=true")),
		},
	}
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			e := install(t, c, in)
			e.waitPolicies(t, true)
			e.run(t, broadSelectionCases())
		})
	}
}
