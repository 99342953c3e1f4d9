package selection_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/selection"
)

func ns(name string, lbls map[string]string, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: annotations}}
}

func byName(op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: corev1.LabelMetadataName, Operator: op, Values: values}}}
}

func TestNamespace(t *testing.T) {
	t.Parallel()
	team := map[string]string{"team": "a"}
	optOut := map[string]string{v1alpha1.OptOutAnnotation: "true"}
	terminating := ns("gone", nil, nil)
	terminating.Status.Phase = corev1.NamespaceTerminating
	tests := []struct {
		name string
		sel  v1alpha1.NamespaceSelector
		ns   *corev1.Namespace
		want bool
	}{
		{"empty selects ordinary namespaces", v1alpha1.NamespaceSelector{}, ns("shop", nil, nil), true},
		{"empty skips kube-system", v1alpha1.NamespaceSelector{}, ns("kube-system", nil, nil), false},
		{"empty skips kube-public", v1alpha1.NamespaceSelector{}, ns("kube-public", nil, nil), false},
		{"empty skips kube-node-lease", v1alpha1.NamespaceSelector{}, ns("kube-node-lease", nil, nil), false},
		{"a glob does not select kube-system", v1alpha1.NamespaceSelector{Include: []string{"kube-*"}}, ns("kube-system", nil, nil), false},
		{"naming kube-system selects it", v1alpha1.NamespaceSelector{Include: []string{"kube-system"}}, ns("kube-system", nil, nil), true},
		{"include glob", v1alpha1.NamespaceSelector{Include: []string{"team-*"}}, ns("team-a", nil, nil), true},
		{"include glob misses", v1alpha1.NamespaceSelector{Include: []string{"team-*"}}, ns("shop", nil, nil), false},
		{"exclude wins over include", v1alpha1.NamespaceSelector{Include: []string{"team-*"}, Exclude: []string{"team-b"}}, ns("team-b", nil, nil), false},
		{"label selector", v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: team}}, ns("x", team, nil), true},
		{"label selector misses", v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{MatchLabels: team}}, ns("x", nil, nil), false},
		{"opt-out annotation", v1alpha1.NamespaceSelector{}, ns("shop", nil, optOut), false},
		{"terminating", v1alpha1.NamespaceSelector{}, terminating, false},
		// kubernetes.io/metadata.name is the name, as the API server sets
		// it, whether or not the labels given carry it.
		{"name label from the name", v1alpha1.NamespaceSelector{Selector: byName("In", "shop", "bank")}, ns("shop", nil, nil), true},
		{"name label from the name misses", v1alpha1.NamespaceSelector{Selector: byName("In", "bank")}, ns("shop", nil, nil), false},
		{"name label NotIn", v1alpha1.NamespaceSelector{Selector: byName("NotIn", "shop")}, ns("shop", team, nil), false},
		{"name label Exists", v1alpha1.NamespaceSelector{Selector: byName("Exists")}, ns("shop", nil, nil), true},
		{"name label DoesNotExist", v1alpha1.NamespaceSelector{Selector: byName("DoesNotExist")}, ns("shop", nil, nil), false},
		{"name label with other labels", v1alpha1.NamespaceSelector{Selector: &metav1.LabelSelector{
			MatchLabels: team, MatchExpressions: byName("In", "x").MatchExpressions,
		}}, ns("x", team, nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := selection.New(&v1alpha1.ClusterPullSecretSpec{Namespaces: tt.sel})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Namespace(tt.ns); got != tt.want {
				t.Errorf("Namespace(%s) = %v, want %v", tt.ns.Name, got, tt.want)
			}
		})
	}
}

func TestServiceAccount(t *testing.T) {
	t.Parallel()
	sa := func(name string, lbls, ann map[string]string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, Annotations: ann}}
	}
	tests := []struct {
		name string
		sel  v1alpha1.ServiceAccountSelector
		sa   *corev1.ServiceAccount
		want bool
	}{
		{"empty selects all", v1alpha1.ServiceAccountSelector{}, sa("builder", nil, nil), true},
		{"names", v1alpha1.ServiceAccountSelector{Names: []string{"default", "app-*"}}, sa("app-web", nil, nil), true},
		{"names miss", v1alpha1.ServiceAccountSelector{Names: []string{"default"}}, sa("builder", nil, nil), false},
		{"labels", v1alpha1.ServiceAccountSelector{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"pull": "yes"}}}, sa("x", map[string]string{"pull": "yes"}, nil), true},
		{"opt-out", v1alpha1.ServiceAccountSelector{}, sa("x", nil, map[string]string{v1alpha1.OptOutAnnotation: "true"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := selection.New(&v1alpha1.ClusterPullSecretSpec{ServiceAccounts: tt.sel})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ServiceAccount(tt.sa); got != tt.want {
				t.Errorf("ServiceAccount(%s) = %v, want %v", tt.sa.Name, got, tt.want)
			}
		})
	}
}

func TestBadSpecNamesTheField(t *testing.T) {
	t.Parallel()
	_, err := selection.New(&v1alpha1.ClusterPullSecretSpec{Namespaces: v1alpha1.NamespaceSelector{Include: []string{"team-["}}})
	if err == nil || !strings.Contains(err.Error(), "spec.namespaces.include") {
		t.Fatalf("want an error naming spec.namespaces.include, got %v", err)
	}
	_, err = selection.New(&v1alpha1.ClusterPullSecretSpec{ServiceAccounts: v1alpha1.ServiceAccountSelector{
		Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}},
	}})
	if err == nil || !strings.Contains(err.Error(), "spec.serviceAccounts.selector") {
		t.Fatalf("want an error naming spec.serviceAccounts.selector, got %v", err)
	}
}
