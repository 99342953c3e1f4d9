package planner_test

import (
	"slices"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

func pods(injecting bool) func(*planner.ClusterPullSecret) {
	return func(c *planner.ClusterPullSecret) {
		c.AttachToPods = true
		if injecting {
			c.InjectingFrom = epoch
		}
	}
}

// Pods mode keeps the copy and edits no ServiceAccount; it is Ready once
// the policy injects.
func TestPodModeWritesNoServiceAccount(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0, pods(true))
	s := snapshot([]planner.ClusterPullSecret{reg}, nil, sa("default", nil, nil), sa("builder", []string{"own"}, nil))
	p := planner.Compute(s)
	if len(p.CreateCopies) != 1 || len(p.ServiceAccounts) != 0 {
		t.Fatalf("plan %+v: want the copy and no ServiceAccount edit", p)
	}
	s, p = converge(t, s)
	if st := p.States["regcred"]; !st.Ready || st.Attached != 0 {
		t.Fatalf("state %+v, want Ready with nothing attached", st)
	}
	if list(s, "default") != nil || !slices.Equal(list(s, "builder"), []string{"own"}) {
		t.Fatalf("lists changed: %v %v", list(s, "default"), list(s, "builder"))
	}
}

func TestPodModeStates(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		mutate func(*planner.ClusterPullSecret)
		reason string
	}{
		{"not injecting yet", pods(false), v1alpha1.ReasonProgressing},
		{"injecting later", func(c *planner.ClusterPullSecret) { c.AttachToPods, c.InjectingFrom = true, epoch.Add(time.Hour) }, v1alpha1.ReasonProgressing},
		{"no policy", func(c *planner.ClusterPullSecret) {
			pods(false)(c)
			c.InjectionProblem = "this API server serves no MutatingAdmissionPolicy"
		}, v1alpha1.ReasonPodInjectionUnavailable},
		{"injecting", pods(true), v1alpha1.ReasonReady},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := cps(t, "regcred", 0, tt.mutate)
			s := snapshot([]planner.ClusterPullSecret{reg}, nil, sa("default", nil, nil))
			s.Now = epoch.Add(time.Minute)
			_, p := converge(t, s)
			if st := p.States["regcred"]; st.Reason != tt.reason || st.Ready != (tt.reason == v1alpha1.ReasonReady) {
				t.Fatalf("state %+v, want %s", st, tt.reason)
			}
		})
	}
}

// A switch from ServiceAccounts to Pods detaches the names only once the
// policy injects: no Pod is created without the credential in between.
func TestSwitchToPodModeDetachesOnceInjecting(t *testing.T) {
	t.Parallel()
	before := cps(t, "regcred", 0)
	s, _ := converge(t, snapshot([]planner.ClusterPullSecret{before}, nil, sa("default", nil, nil)))
	if !slices.Contains(list(s, "default"), "regcred") {
		t.Fatal("not attached in ServiceAccounts mode")
	}
	s.ClusterPullSecrets[0] = cps(t, "regcred", 0, pods(false))
	s, p := converge(t, s)
	if !slices.Contains(list(s, "default"), "regcred") || p.States["regcred"].Ready {
		t.Fatalf("detached before the policy injects: %v, %+v", list(s, "default"), p.States["regcred"])
	}
	s.ClusterPullSecrets[0] = cps(t, "regcred", 0, pods(true))
	s, p = converge(t, s)
	if slices.Contains(list(s, "default"), "regcred") || !p.States["regcred"].Ready {
		t.Fatalf("still attached once injecting: %v, %+v", list(s, "default"), p.States["regcred"])
	}
	// And back: attached again, by the ServiceAccounts mode.
	s.ClusterPullSecrets[0] = cps(t, "regcred", 0)
	s, _ = converge(t, s)
	if !slices.Contains(list(s, "default"), "regcred") {
		t.Fatal("not attached again after the switch back")
	}
}

// In Pods mode a stuck Pod is restarted when its replacement gets the name
// from the policy: its own template's list does not hide it, but a
// ServiceAccount that opts out or enforces mountable secrets does.
func TestPodModeRestarts(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0, pods(true), restarting)
	rs := planner.Owner{Group: "apps", Kind: "ReplicaSet", Name: "web-1", UID: "rs-1"}
	for _, tt := range []struct {
		name    string
		sa      planner.ServiceAccount
		restart bool
	}{
		{"plain", sa("default", nil, nil), true},
		{"enforcing", func() planner.ServiceAccount {
			s := sa("default", nil, nil)
			s.Annotations = map[string]string{"kubernetes.io/enforce-mountable-secrets": "true"}
			return s
		}(), false},
		{"opted out", func() planner.ServiceAccount {
			s := sa("default", nil, nil)
			s.Annotations = map[string]string{v1alpha1.OptOutAnnotation: "true"}
			return s
		}(), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred")}, tt.sa)
			s.Pods = []planner.Pod{{Name: "web-1-a", UID: "p1", ServiceAccount: "default", Owner: &rs, StuckImages: []string{registry + "app"},
				PullSecrets: []string{"own"}}}
			s.Workloads = []planner.Workload{{Owner: rs, PullSecrets: []string{"own"}, Active: true, FailureBudget: -1}}
			p := planner.Compute(s)
			if got := len(p.DeletePods) == 1; got != tt.restart {
				t.Fatalf("restart %v, want %v (plan %+v)", got, tt.restart, p)
			}
		})
	}
}

// A name the controller attached and someone else keeps removing is put
// back twice at once, then after a growing wait; the fight is reported
// and the namespace planned again when the wait ends.
func TestFightOverAServiceAccountIsBounded(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0)
	now := epoch.Add(time.Hour)
	lost := func(reattached ...time.Time) planner.Snapshot {
		s := sa("default", []string{"app-own"}, map[string]string{"regcred": "regcred"})
		s.Reattached = map[string][]time.Time{"regcred": reattached}
		snap := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred")}, s)
		snap.Now = now
		return snap
	}
	p := planner.Compute(lost())
	if len(p.ServiceAccounts) != 1 || !p.ServiceAccounts[0].Attach[0].Again || len(p.States["regcred"].Contested) != 0 {
		t.Fatalf("first loss: %+v", p)
	}
	p = planner.Compute(lost(now.Add(-2*time.Second), now.Add(-time.Second)))
	st := p.States["regcred"]
	if len(p.ServiceAccounts) != 0 || st.Reason != v1alpha1.ReasonContested || len(st.Contested) != 1 {
		t.Fatalf("third loss within seconds: want no write and Contested, got %+v", p)
	}
	if p.RecheckAfter != 4*time.Second || !st.Contested[0].Next.Equal(now.Add(4*time.Second)) {
		t.Fatalf("recheck %v, next %v; want in 4s", p.RecheckAfter, st.Contested[0].Next)
	}
	// Holding: reported for a minute of quiet after the last re-attach.
	s := sa("default", []string{"app-own", "regcred"}, map[string]string{"regcred": "regcred"})
	s.Reattached = map[string][]time.Time{"regcred": {now.Add(-30 * time.Second), now.Add(-20 * time.Second)}}
	snap := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred")}, s)
	snap.Now = now
	p = planner.Compute(snap)
	if st := p.States["regcred"]; st.Reason != v1alpha1.ReasonContested || p.RecheckAfter != 40*time.Second {
		t.Fatalf("holding: %+v, recheck %v", st, p.RecheckAfter)
	}
	snap.Now = now.Add(41 * time.Second)
	if st := planner.Compute(snap).States["regcred"]; !st.Ready {
		t.Fatalf("a minute of quiet ends the report: %+v", st)
	}
}
