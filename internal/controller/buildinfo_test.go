package controller_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pullsecrets/pullsecrets/internal/controller"
	"github.com/pullsecrets/pullsecrets/internal/version"
)

// pullsecrets_build_info is 1 and carries the same version and commit as
// --version and `kubectl pullsecrets version`.
func TestBuildInfoMetric(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	controller.NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := version.Get()
	for _, f := range families {
		if f.GetName() != "pullsecrets_build_info" {
			continue
		}
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%d series, want 1", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] != want.Version || labels["commit"] != want.Commit || labels["goversion"] != want.GoVersion || m.GetGauge().GetValue() != 1 {
			t.Errorf("pullsecrets_build_info %v = %v, want version %q commit %q = 1", labels, m.GetGauge().GetValue(), want.Version, want.Commit)
		}
		return
	}
	t.Fatal("no pullsecrets_build_info series")
}
