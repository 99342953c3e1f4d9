package planner_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// The rules the model found missing in Pods mode: a switch never leaves a
// new Pod without the credential.

// A name attached before the switch stays where the policy does not give
// new Pods the name of a copy in place: on a ServiceAccount that enforces
// mountable secrets (the policy skips its Pods), and while the name is
// held by someone else's Secret. Elsewhere it goes once the policy injects.
func TestSwitchToPodsKeepsNamesThePolicyCannotReplace(t *testing.T) {
	t.Parallel()
	enforcing := sa("locked", []string{"regcred"}, map[string]string{"regcred": "regcred"})
	enforcing.Annotations = map[string]string{"kubernetes.io/enforce-mountable-secrets": "true"}
	for _, tt := range []struct {
		name     string
		copies   func(planner.ClusterPullSecret) []planner.Copy
		blocked  map[string]string
		detached []string // of default, locked
		ready    bool
	}{
		{"the policy injects our copy's name", func(c planner.ClusterPullSecret) []planner.Copy { return []planner.Copy{copyOf(c, "regcred")} },
			nil, []string{"default"}, true},
		{"the policy injects a name someone else's Secret holds", func(c planner.ClusterPullSecret) []planner.Copy {
			return []planner.Copy{copyOf(c, "regcred")}
		}, map[string]string{"moved": "Secret moved exists"}, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := cps(t, "regcred", 0, pods(true))
			s := snapshot([]planner.ClusterPullSecret{reg}, tt.copies(reg),
				sa("default", []string{"regcred"}, map[string]string{"regcred": "regcred"}), enforcing)
			if tt.blocked != nil {
				// Renamed onto a name a foreign Secret holds: the policy
				// injects it, but it is not ours.
				s.ClusterPullSecrets[0].SecretName = "moved"
				s.ClusterPullSecrets[0].Injected = "moved"
				s.Blocked = tt.blocked
			}
			s, p := converge(t, s)
			var detached []string
			for _, name := range []string{"default", "locked"} {
				if !slices.Contains(list(s, name), "regcred") {
					detached = append(detached, name)
				}
			}
			if !slices.Equal(detached, tt.detached) {
				t.Fatalf("detached from %v, want %v", detached, tt.detached)
			}
			if st := p.States["regcred"]; st.Ready != tt.ready {
				t.Fatalf("state %+v, want Ready %v", st, tt.ready)
			}
		})
	}
}

// Renamed in Pods mode: the old copy stays while the policy may still give
// its name to new Pods (the rename not yet published, or published less
// than the API server's lag ago), and goes once it injects the new one.
func TestPodsModeRenameKeepsTheOldCopyUntilTheNewNameIsInjected(t *testing.T) {
	t.Parallel()
	now := epoch.Add(time.Hour)
	for _, tt := range []struct {
		name     string
		injected string
		from     time.Time
		retired  bool
	}{
		{"the old name still published", "old", time.Time{}, false},
		{"the new name published a moment ago", "regcred", now.Add(time.Second), false},
		{"the new name injected", "regcred", now.Add(-time.Second), true},
		{"nothing published (the policy is gone)", "", time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := cps(t, "regcred", 0, func(c *planner.ClusterPullSecret) {
				c.AttachToPods, c.Injected, c.InjectingFrom = true, tt.injected, tt.from
			})
			s := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred"), copyOf(reg, "old")}, sa("default", nil, nil))
			p := planner.Compute(s)
			retired := slices.ContainsFunc(p.DeleteCopies, func(d planner.CopyDelete) bool { return d.Name == "old" })
			if retired != tt.retired {
				t.Fatalf("old copy retired %v, want %v: %+v", retired, tt.retired, p)
			}
			if st := p.States["regcred"]; !retired && (len(st.Retiring) != 1 || !slices.Equal(st.Retiring[0].HeldBy, []string{"the pod-injection policy"})) {
				t.Fatalf("retiring %+v, want old held by the pod-injection policy", st.Retiring)
			}
		})
	}
	// Switched back to ServiceAccounts mode while the old name is still
	// published (until every namespace is Ready): held too.
	reg := cps(t, "regcred", 0, func(c *planner.ClusterPullSecret) { c.Injected = "old" })
	s := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred"), copyOf(reg, "old")}, sa("default", nil, nil))
	if p := planner.Compute(s); len(p.DeleteCopies) != 0 {
		t.Fatalf("retired while the policy may inject it: %+v", p.DeleteCopies)
	}
	// Not in a namespace it no longer selects, where the policy injects
	// nothing.
	s.Namespace.Labels = nil
	s.ClusterPullSecrets[0] = cps(t, "regcred", 0, onlyNamespacesLabelled(t, "team", "shop"), func(c *planner.ClusterPullSecret) { c.Injected = "old" })
	if p := planner.Compute(s); len(p.DeleteCopies) != 2 {
		t.Fatalf("an unselected namespace keeps copies: %+v", p.DeleteCopies)
	}
}

// A name recorded for one that lets it go, whose copy a Pods-mode
// ClusterPullSecret is making again under its own name, is handed over to
// it until the policy injects (no ServiceAccount goes without it), and the
// one letting go is not Ready before the hand-over is written.
func TestANameLetGoIsHandedToAPodsModeHolder(t *testing.T) {
	t.Parallel()
	older := cps(t, "older", 0, named("shared"), pods(false))
	newer := cps(t, "newer", 10, named("other"))
	// newer attached "shared" and was renamed; the user deleted its copy,
	// so older, first in line, makes it again.
	s := snapshot([]planner.ClusterPullSecret{older, newer}, []planner.Copy{copyOf(newer, "other")},
		sa("default", []string{"shared", "other"}, map[string]string{"shared": "newer", "other": "newer"}))
	p := planner.Compute(s)
	if len(p.ServiceAccounts) != 1 || len(p.ServiceAccounts[0].Detach) != 0 ||
		!slices.Equal(p.ServiceAccounts[0].Reassign, []planner.Attachment{{Secret: "shared", By: "older"}}) {
		t.Fatalf("want shared handed over to older, got %+v", p.ServiceAccounts)
	}
	if st := p.States["newer"]; st.Ready {
		t.Fatalf("newer is Ready before the hand-over is written: %+v", st)
	}
	s, _ = converge(t, s)
	if !slices.Contains(list(s, "default"), "shared") {
		t.Fatal("shared was detached before the policy injects it")
	}
	// Once the policy injects it, older lets it go.
	s.ClusterPullSecrets[0].InjectingFrom, s.ClusterPullSecrets[0].Injected = epoch, "shared"
	s, p = converge(t, s)
	if slices.Contains(list(s, "default"), "shared") || !p.States["older"].Ready {
		t.Fatalf("still attached once injected: %v, %+v", list(s, "default"), p.States["older"])
	}
}

// Pods mode is Ready whatever a ServiceAccount whose record cannot be read
// lists: it is left alone, and the policy serves its Pods.
func TestPodsModeIgnoresTamperedRecords(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0, pods(true))
	tampered := sa("default", []string{"regcred"}, map[string]string{"regcred": "regcred"})
	tampered.RecordProblem = "unproven"
	s, p := converge(t, snapshot([]planner.ClusterPullSecret{reg}, nil, tampered))
	if !p.States["regcred"].Ready || !slices.Equal(list(s, "default"), []string{"regcred"}) {
		t.Fatalf("state %+v, list %v", p.States["regcred"], list(s, "default"))
	}
}

// A fight's state says where, how often, and when the name goes back.
func TestContestedMessage(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0)
	now := epoch.Add(time.Hour)
	s := sa("default", []string{"app-own"}, map[string]string{"regcred": "regcred"})
	s.Reattached = map[string][]time.Time{"regcred": {now.Add(-2 * time.Second), now.Add(-time.Second)}}
	snap := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred")}, s)
	snap.Now = now
	st := planner.Compute(snap).States["regcred"]
	want := "another writer keeps removing the name: ServiceAccount default lost regcred 2 times, put back at 2026-01-01T01:00:04Z"
	if st.Reason != v1alpha1.ReasonContested || st.Message != want {
		t.Fatalf("state %s %q, want %q", st.Reason, st.Message, want)
	}
	if len(st.Contested) != 1 || st.Contested[0] != (planner.Contest{ServiceAccount: "default", Secret: "regcred", Losses: 2, Next: now.Add(4 * time.Second)}) {
		t.Fatalf("contested %+v", st.Contested)
	}
	// Two ServiceAccounts, one holding the name again: both named.
	held := sa("builder", []string{"regcred"}, map[string]string{"regcred": "regcred"})
	held.Reattached = map[string][]time.Time{"regcred": {now.Add(-20 * time.Second), now.Add(-10 * time.Second)}}
	snap.ServiceAccounts = append(snap.ServiceAccounts, held)
	st = planner.Compute(snap).States["regcred"]
	if !strings.Contains(st.Message, "ServiceAccount builder lost regcred 2 times; ServiceAccount default lost regcred 2 times, put back at") {
		t.Fatalf("message %q", st.Message)
	}
}

// A Pods-mode ClusterPullSecret whose name someone else's Secret holds
// reports the conflict, whatever the policy does.
func TestPodsModeConflict(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0, pods(true))
	s := snapshot([]planner.ClusterPullSecret{reg}, nil, sa("default", nil, nil))
	s.Blocked = map[string]string{"regcred": "Secret regcred exists and was not made by pullsecrets"}
	if st := planner.Compute(s).States["regcred"]; st.Reason != v1alpha1.ReasonConflict || st.Message != s.Blocked["regcred"] {
		t.Fatalf("state %+v", st)
	}
}

// The namespace is planned again at the soonest wait any rule asks for,
// whatever else the plan does: here a fight whose backoff is over (put
// back now) beside one still waiting.
func TestRecheckIsTheSoonestWait(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0)
	now := epoch.Add(time.Hour)
	over := sa("builder", nil, map[string]string{"regcred": "regcred"})
	over.Reattached = map[string][]time.Time{"regcred": {now.Add(-time.Minute), now.Add(-50 * time.Second)}}
	waiting := sa("default", nil, map[string]string{"regcred": "regcred"})
	waiting.Reattached = map[string][]time.Time{"regcred": {now.Add(-2 * time.Second), now.Add(-time.Second)}}
	s := snapshot([]planner.ClusterPullSecret{reg}, []planner.Copy{copyOf(reg, "regcred")}, over, waiting)
	s.Now = now
	p := planner.Compute(s)
	if len(p.ServiceAccounts) != 1 || p.ServiceAccounts[0].ServiceAccount != "builder" {
		t.Fatalf("want builder's name put back, default's waiting: %+v", p.ServiceAccounts)
	}
	if p.RecheckAfter != 4*time.Second {
		t.Fatalf("recheck after %v, want 4s (default's backoff)", p.RecheckAfter)
	}
}

// A ServiceAccount being deleted is never edited: Pods mode does not wait
// for the names it lists.
func TestPodsModeIgnoresTerminatingServiceAccounts(t *testing.T) {
	t.Parallel()
	reg := cps(t, "regcred", 0, pods(true))
	going := sa("default", []string{"regcred"}, map[string]string{"regcred": "regcred"})
	going.Deleting = true
	_, p := converge(t, snapshot([]planner.ClusterPullSecret{reg}, nil, going))
	if !p.States["regcred"].Ready {
		t.Fatalf("state %+v", p.States["regcred"])
	}
}
