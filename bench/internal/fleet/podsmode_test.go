package fleet

import (
	"math"
	"strings"
	"testing"
)

func TestReadPolicyReadsTheShippedPolicy(t *testing.T) {
	policy, binding, err := readPolicy("../../../config/pod-injection/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if binding.Spec.PolicyName != policy.Name {
		t.Errorf("binding %s binds %q, the policy is %s", binding.Name, binding.Spec.PolicyName, policy.Name)
	}
	if policy.Spec.ParamKind == nil || policy.Spec.ParamKind.Kind != "ClusterPullSecret" {
		t.Errorf("paramKind %+v, want ClusterPullSecret", policy.Spec.ParamKind)
	}
	if len(policy.Spec.Mutations) == 0 {
		t.Error("no mutations read")
	}
}

func TestKiBPerNamespaceIsAboveTheBaseline(t *testing.T) {
	cases := []struct {
		hwm, baseline int64
		namespaces    int
		want          float64
	}{
		{hwm: 30<<20 + 10<<20, baseline: 30 << 20, namespaces: 1024, want: 10},
		{hwm: 30 << 20, baseline: 30 << 20, namespaces: 1000, want: 0},
		{hwm: 40 << 20, baseline: 30 << 20, namespaces: 0, want: 10 << 10}, // no fleet: no division by zero
	}
	for _, c := range cases {
		if got := kibPerNamespace(c.hwm, c.baseline, c.namespaces); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("kibPerNamespace(%d, %d, %d) = %v, want %v", c.hwm, c.baseline, c.namespaces, got, c.want)
		}
	}
}

func TestPodsModeFiguresNeedOneCreateANamespaceAndNoServiceAccountWrite(t *testing.T) {
	cases := []struct {
		name      string
		phase     Phase
		admission []AdmissionCost
		want      map[string]bool // figure name prefix -> met
	}{
		{
			name:  "minimal",
			phase: Phase{Name: "cold", SecretCreates: 100},
			admission: []AdmissionCost{
				{Name: "no policy", Samples: 10},
				{Name: "1 ClusterPullSecret", Params: 1, Samples: 10, Injected: 10},
			},
			want: map[string]bool{"Pods mode, cold": true, "Pod create, no policy": true, "Pod create, 1 ClusterPullSecret": true},
		},
		{
			name:  "a ServiceAccount written, a Pod not injected, one injected without the policy",
			phase: Phase{Name: "cold", SecretCreates: 100, ServiceAccountWrites: 1},
			admission: []AdmissionCost{
				{Name: "no policy", Samples: 10, Injected: 1},
				{Name: "1 ClusterPullSecret", Params: 1, Samples: 10, Injected: 9},
			},
			want: map[string]bool{"Pods mode, cold": false, "Pod create, no policy": false, "Pod create, 1 ClusterPullSecret": false},
		},
		{
			name:  "a copy missing",
			phase: Phase{Name: "cold", SecretCreates: 99},
			want:  map[string]bool{"Pods mode, cold": false},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{Options: Options{AttachTo: attachPods}, Setup: Fleet{Namespaces: 100}, Phases: []Phase{c.phase}, Admission: c.admission}
			got := map[string]bool{}
			r.evaluatePodsMode(func(name, _, _ string, ok *bool) {
				if ok == nil {
					t.Errorf("figure %q has no verdict", name)
					return
				}
				for prefix := range c.want {
					if strings.HasPrefix(name, prefix) {
						got[prefix] = *ok
					}
				}
			})
			for prefix, want := range c.want {
				if v, ok := got[prefix]; !ok || v != want {
					t.Errorf("%s: met %v (present %v), want %v", prefix, v, ok, want)
				}
			}
		})
	}
	r := &Result{Options: Options{AttachTo: attachServiceAccounts}, Phases: []Phase{{Name: "cold"}}}
	r.evaluatePodsMode(func(name, _, _ string, _ *bool) { t.Errorf("ServiceAccounts mode: figure %q", name) })
}
