package planner_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

func TestFreshNamespaceCopyThenAttachThenReady(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	s := snapshot([]planner.ClusterPullSecret{acme}, nil, sa("default", []string{"theirs"}, nil))
	p := planner.Compute(s)
	want := planner.Plan{
		CreateCopies:    []planner.CopyWrite{{Name: "acme", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme"}},
		ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Attach: []planner.Attachment{{Secret: "acme", By: "acme"}}}},
	}
	if d := cmp.Diff(want, p, cmpopts.IgnoreFields(planner.Plan{}, "States")); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if st := p.States["acme"]; st.Ready || st.Reason != v1alpha1.ReasonProgressing {
		t.Fatalf("state while writes are pending: %+v", st)
	}
	s, last := converge(t, s)
	if got := list(s, "default"); !slices.Equal(got, []string{"theirs", "acme"}) {
		t.Fatalf("default lists %v", got)
	}
	if st := last.States["acme"]; !st.Ready || st.Attached != 1 {
		t.Fatalf("converged state: %+v", st)
	}
}

func TestRotationUpdatesTheCopyOnly(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	k := copyOf(acme, "acme")
	k.Hash = "old"
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{k}, sa("default", []string{"acme"}, map[string]string{"acme": "acme"}))
	p := planner.Compute(s)
	if len(p.UpdateCopies) != 1 || p.UpdateCopies[0].UID != k.UID || p.Writes() != 1 {
		t.Fatalf("plan: %+v", p)
	}
}

// Scenario 1: renaming onto a name a user's own Secret holds never leaves a
// ServiceAccount without the credential: the old name and copy stay.
func TestRenameOntoAForeignSecretKeepsTheOldName(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("x"))
	old := copyOf(acme, "y")
	for _, tt := range []struct {
		name    string
		blocked map[string]string
	}{
		{"foreign Secret not known yet", nil},
		{"foreign Secret learned from a failed create", map[string]string{"x": "Secret x exists and was not made by pullsecrets"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The user's own x is attached by hand, beside our y.
			s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{old},
				sa("default", []string{"x", "y"}, map[string]string{"y": "acme"}))
			s.Blocked = tt.blocked
			p := planner.Compute(s)
			if tt.blocked == nil {
				// The plan cannot know x is taken: it creates x first, and
				// the writer stops at that create's failure, before the
				// edit or the delete, learns, and plans again.
				if len(p.CreateCopies) != 1 || p.CreateCopies[0].Name != "x" {
					t.Fatalf("y detached or deleted in a plan that does not create x first: %+v", p)
				}
				return
			}
			if len(p.ServiceAccounts) != 0 || len(p.DeleteCopies) != 0 {
				t.Fatalf("y detached or deleted before x holds our copy: %+v", p)
			}
			if tt.blocked != nil {
				if !p.Empty() || p.States["acme"].Reason != v1alpha1.ReasonConflict {
					t.Fatalf("want no writes and Conflict, got %+v", p)
				}
				if r := p.States["acme"].Retiring; len(r) != 1 || r[0].Secret != "y" {
					t.Fatalf("the old copy is reported as held: %+v", r)
				}
			}
		})
	}
}

// A rename plans the new copy, then one write per ServiceAccount that
// attaches the new name and detaches the old, then the old copy's
// retirement once nothing uses it. The writer makes them in that order and
// stops at the first failure.
func TestRenameSwapsNamesInOneWrite(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("x"))
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "y")},
		sa("default", []string{"theirs", "y"}, map[string]string{"y": "acme"}))
	p := planner.Compute(s)
	want := planner.Plan{
		CreateCopies:    []planner.CopyWrite{{Name: "x", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme"}},
		ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Attach: []planner.Attachment{{Secret: "x", By: "acme"}}, Detach: []string{"y"}, Replacements: map[string]string{"y": "x"}}},
		DeleteCopies:    []planner.CopyDelete{{Name: "y", UID: "secret-y", Owner: "acme", Why: "no ClusterPullSecret wants it here and nothing uses it"}},
	}
	if d := cmp.Diff(want, p, cmpopts.IgnoreFields(planner.Plan{}, "States")); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	s, _ = converge(t, s)
	if got := list(s, "default"); !slices.Equal(got, []string{"theirs", "x"}) {
		t.Fatalf("default lists %v", got)
	}
	if got := copyNames(s); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("copies %v", got)
	}
}

// Scenario 2: two ClusterPullSecrets wanting one name; the one whose copy
// is there keeps it, whatever the order or age.
func TestTwoClusterPullSecretsOneName(t *testing.T) {
	t.Parallel()
	older := cps(t, "older", 0, named("reg"))
	newer := cps(t, "newer", 10, named("reg"))
	k := copyOf(newer, "reg")
	for _, order := range [][]planner.ClusterPullSecret{{older, newer}, {newer, older}} {
		s := snapshot(order, []planner.Copy{k}, sa("default", []string{"reg"}, map[string]string{"reg": "newer"}))
		p := planner.Compute(s)
		if !p.Empty() {
			t.Fatalf("writes: %+v", p)
		}
		if p.States["older"].Reason != v1alpha1.ReasonConflict || !p.States["newer"].Ready {
			t.Fatalf("states: %+v", p.States)
		}
	}
	// Nobody's copy yet: the older takes it.
	s := snapshot([]planner.ClusterPullSecret{newer, older}, nil, sa("default", nil, nil))
	s, last := converge(t, s)
	if got := list(s, "default"); !slices.Equal(got, []string{"reg"}) || s.Copies[0].Owner != "older" {
		t.Fatalf("default lists %v, copies %+v", got, s.Copies)
	}
	if last.States["newer"].Reason != v1alpha1.ReasonConflict {
		t.Fatalf("newer: %+v", last.States["newer"])
	}
}

// Scenario 3: a Secret wearing our labels without a valid proof is never
// modified, adopted or deleted.
func TestForgedCopiesAreNeverTouched(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	forgedWanted := planner.Copy{Name: "acme", UID: "tenant-1", Owner: "acme", OwnerUID: "uid-acme", Hash: "x", Proven: false}
	forgedOther := planner.Copy{Name: "junk", UID: "tenant-2", Owner: "acme", OwnerUID: "uid-acme", Proven: false}
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{forgedWanted, forgedOther}, sa("default", nil, nil))
	p := planner.Compute(s)
	if !p.Empty() {
		t.Fatalf("writes: %+v", p)
	}
	if p.States["acme"].Reason != v1alpha1.ReasonConflict {
		t.Fatalf("state: %+v", p.States["acme"])
	}
}

// Scenario 4 and 5: an old copy is kept while any Pod, template or
// ServiceAccount uses it; finished Pods and finished Jobs do not hold it.
func TestRetirementKnowsEveryUser(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("new"))
	base := func() planner.Snapshot {
		return snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "new"), copyOf(acme, "old")},
			sa("default", []string{"new"}, map[string]string{"new": "acme"}))
	}
	for _, tt := range []struct {
		name   string
		mutate func(*planner.Snapshot)
		held   []string
	}{
		{"nothing uses it", func(*planner.Snapshot) {}, nil},
		{"a Deployment scaled to 0 lists it", func(s *planner.Snapshot) {
			s.Workloads = []planner.Workload{{Owner: planner.Owner{Group: "apps", Kind: "Deployment", Name: "web"}, PullSecrets: []string{"old"}, SecretRefs: []string{"old"}, Active: true}}
		}, []string{"Deployment web"}},
		{"a CronJob between runs", func(s *planner.Snapshot) {
			s.Workloads = []planner.Workload{{Owner: planner.Owner{Group: "batch", Kind: "CronJob", Name: "nightly"}, SecretRefs: []string{"old"}, Active: true}}
		}, []string{"CronJob nightly"}},
		{"a finished Job", func(s *planner.Snapshot) {
			s.Workloads = []planner.Workload{{Owner: planner.Owner{Group: "batch", Kind: "Job", Name: "once"}, SecretRefs: []string{"old"}, Active: false}}
		}, nil},
		{"a running Pod's secret volume", func(s *planner.Snapshot) {
			s.Pods = []planner.Pod{{Name: "web-1", UID: "p1", SecretRefs: []string{"old"}}}
		}, []string{"Pod web-1"}},
		{"a finished Pod", func(s *planner.Snapshot) {
			s.Pods = []planner.Pod{{Name: "web-1", UID: "p1", SecretRefs: []string{"old"}, Finished: true}}
		}, nil},
		{"a Pod being deleted", func(s *planner.Snapshot) {
			s.Pods = []planner.Pod{{Name: "web-1", UID: "p1", SecretRefs: []string{"old"}, Deleting: true}}
		}, nil},
		{"a ServiceAccount being deleted lists it", func(s *planner.Snapshot) {
			going := sa("builder", []string{"old"}, map[string]string{"old": "acme"})
			going.Deleting = true
			s.ServiceAccounts = append(s.ServiceAccounts, going)
		}, nil},
		{"a ServiceAccount it does not select lists it by hand", func(s *planner.Snapshot) {
			s.ServiceAccounts = append(s.ServiceAccounts, planner.ServiceAccount{Name: "builder", PullSecrets: []string{"old"}, Annotations: map[string]string{v1alpha1.OptOutAnnotation: "true"}})
		}, []string{"ServiceAccount builder"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mutate(&s)
			p := planner.Compute(s)
			if tt.held == nil {
				if len(p.DeleteCopies) != 1 || p.DeleteCopies[0].Name != "old" {
					t.Fatalf("old copy not retired: %+v", p)
				}
				return
			}
			if len(p.DeleteCopies) != 0 {
				t.Fatalf("retired while held: %+v", p.DeleteCopies)
			}
			want := []planner.Retiring{{Secret: "old", HeldBy: tt.held}}
			if d := cmp.Diff(want, p.States["acme"].Retiring); d != "" {
				t.Fatalf("retiring (-want +got):\n%s", d)
			}
		})
	}
}

func stuckPod(name, sa string, list []string, owner *planner.Owner) planner.Pod {
	return planner.Pod{Name: name, UID: "uid-" + name, ServiceAccount: sa, PullSecrets: list, SecretRefs: list, Owner: owner, StuckImages: []string{registry + "shop/web:1"}}
}

var replicaSet = planner.Owner{Group: "apps", Kind: "ReplicaSet", Name: "web-7d", UID: "rs-1"}

// Scenario 6: a Pod is restarted only when its replacement gets the
// credential, its owner is a real workload, and a Job can afford it.
func TestRestartOnlyWhenTheReplacementGetsTheSecret(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("regcred"), restarting)
	attached := sa("default", []string{"legacy", "regcred"}, map[string]string{"regcred": "acme"})
	for _, tt := range []struct {
		name     string
		pod      planner.Pod
		workload *planner.Workload
		mutate   func(*planner.ClusterPullSecret)
		restart  bool
		why      string
	}{
		{"created before the attach, template lists nothing", stuckPod("web-1", "default", []string{"legacy"}, &replicaSet),
			&planner.Workload{Owner: replicaSet, Active: true, FailureBudget: -1}, nil, true, ""},
		{"template lists its own names: the replacement would not get it", stuckPod("web-1", "default", []string{"legacy"}, &replicaSet),
			&planner.Workload{Owner: replicaSet, PullSecrets: []string{"legacy"}, Active: true, FailureBudget: -1}, nil, false, "lists its own imagePullSecrets"},
		{"template lists the name", stuckPod("web-1", "default", []string{"legacy"}, &replicaSet),
			&planner.Workload{Owner: replicaSet, PullSecrets: []string{"legacy", "regcred"}, Active: true, FailureBudget: -1}, nil, true, ""},
		{"the replacement is stuck again: reported, never restarted", stuckPod("web-2", "default", []string{"legacy", "regcred"}, &replicaSet),
			&planner.Workload{Owner: replicaSet, Active: true, FailureBudget: -1}, nil, false, "still fails to pull"},
		{"an owner named ReplicaSet from another group", stuckPod("web-1", "default", nil, &planner.Owner{Group: "example.com", Kind: "ReplicaSet", Name: "web-7d", UID: "x"}),
			&planner.Workload{Owner: planner.Owner{Group: "example.com", Kind: "ReplicaSet", Name: "web-7d", UID: "x"}, Active: true, FailureBudget: -1}, nil, false, "no owner"},
		{"an owner that is not in the cache", stuckPod("web-1", "default", nil, &replicaSet), nil, nil, false, "no owner"},
		{"a bare Pod", stuckPod("tool", "default", nil, nil), nil, nil, false, "no owner"},
		{"a Job that can afford a failure", stuckPod("job-1", "default", nil, &planner.Owner{Group: "batch", Kind: "Job", Name: "once", UID: "j1"}),
			&planner.Workload{Owner: planner.Owner{Group: "batch", Kind: "Job", Name: "once", UID: "j1"}, Active: true, FailureBudget: 2}, nil, true, ""},
		{"a Job at its backoffLimit", stuckPod("job-1", "default", nil, &planner.Owner{Group: "batch", Kind: "Job", Name: "once", UID: "j1"}),
			&planner.Workload{Owner: planner.Owner{Group: "batch", Kind: "Job", Name: "once", UID: "j1"}, Active: true, FailureBudget: 0}, nil, false, "backoffLimit"},
		{"restartPods Never", stuckPod("web-1", "default", nil, &replicaSet),
			&planner.Workload{Owner: replicaSet, Active: true, FailureBudget: -1}, func(c *planner.ClusterPullSecret) { c.RestartPods = false }, false, "restartPods is Never"},
		{"stuck on another registry", planner.Pod{Name: "web-1", UID: "u", ServiceAccount: "default", Owner: &replicaSet, StuckImages: []string{"other.example.com/x:1"}},
			&planner.Workload{Owner: replicaSet, Active: true, FailureBudget: -1}, nil, false, ""},
		{"a credential that matches no image", stuckPod("web-1", "default", nil, &replicaSet),
			&planner.Workload{Owner: replicaSet, Active: true, FailureBudget: -1}, func(c *planner.ClusterPullSecret) { c.Source.Matches = nil }, false, ""},
		{"its owner was recreated under the same name", stuckPod("web-1", "default", nil, &replicaSet),
			&planner.Workload{Owner: planner.Owner{Group: "apps", Kind: "ReplicaSet", Name: "web-7d", UID: "rs-2"}, Active: true, FailureBudget: -1}, nil, false, "no owner"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := acme
			if tt.mutate != nil {
				tt.mutate(&c)
			}
			s := snapshot([]planner.ClusterPullSecret{c}, []planner.Copy{copyOf(c, "regcred")}, attached)
			s.Pods = []planner.Pod{tt.pod}
			if tt.workload != nil {
				s.Workloads = []planner.Workload{*tt.workload}
			}
			p := planner.Compute(s)
			if got := len(p.DeletePods) == 1; got != tt.restart {
				t.Fatalf("restart = %v, want %v: %+v", got, tt.restart, p)
			}
			stuck := p.States[c.Name].Stuck
			switch {
			case tt.why == "" && len(stuck) != 0:
				t.Fatalf("reported: %+v", stuck)
			case tt.why != "" && (len(stuck) != 1 || !strings.Contains(stuck[0].Why, tt.why)):
				t.Fatalf("want a report with %q, got %+v", tt.why, stuck)
			}
			if tt.restart {
				// The replacement, made by admission, lists the name: the
				// same cause never restarts it again.
				replacement := stuckPod("web-2", "default", []string{"legacy", "regcred"}, tt.pod.Owner)
				s.Pods = []planner.Pod{replacement}
				if p := planner.Compute(s); len(p.DeletePods) != 0 {
					t.Fatalf("replacement restarted: %+v", p.DeletePods)
				}
			}
		})
	}
}

// Scenario 8: deletion removes only what the ClusterPullSecret made, and
// what is already going away does not hold it.
func TestDeletionCountsOnlyWhatIsLeft(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("reg"))
	acme.Deleting = true
	going := copyOf(acme, "reg")
	going.Deleting = true // a foreign finalizer holds it
	terminatingSA := sa("builder", []string{"reg"}, map[string]string{"reg": "acme"})
	terminatingSA.Deleting = true
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{going, copyOf(acme, "old")},
		sa("default", []string{"theirs", "reg"}, map[string]string{"reg": "acme"}), terminatingSA,
		sa("legacy", []string{"reg"}, nil))
	s.Pods = []planner.Pod{{Name: "web", UID: "p", SecretRefs: []string{"old"}}}
	p := planner.Compute(s)
	if len(p.DeleteCopies) != 1 || p.DeleteCopies[0].Name != "old" {
		t.Fatalf("deletes: %+v", p.DeleteCopies)
	}
	want := []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Detach: []string{"reg"}}}
	if d := cmp.Diff(want, p.ServiceAccounts); d != "" {
		t.Fatalf("edits (-want +got):\n%s", d)
	}
	s, last := converge(t, s)
	if st := last.States["acme"]; st.Reason != v1alpha1.ReasonDeleting || st.Leftovers != 0 {
		t.Fatalf("state: %+v", st)
	}
	if got := list(s, "legacy"); !slices.Equal(got, []string{"reg"}) {
		t.Fatalf("a name listed by hand was removed: %v", got)
	}
}

// A broken source or spec freezes everything of that ClusterPullSecret.
func TestFrozenClusterPullSecretIsLeftAlone(t *testing.T) {
	t.Parallel()
	for _, mutate := range []func(*planner.ClusterPullSecret){
		func(c *planner.ClusterPullSecret) { c.Source = planner.Source{Problem: v1alpha1.ReasonSourceNotFound} },
		func(c *planner.ClusterPullSecret) { c.Invalid, c.Selector = "bad glob", nil },
	} {
		acme := cps(t, "acme", 0, named("new"), mutate)
		s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "old")},
			sa("default", []string{"old"}, map[string]string{"old": "acme"}), sa("late", nil, nil))
		p := planner.Compute(s)
		if !p.Empty() || p.States["acme"].Ready {
			t.Fatalf("writes or ready: %+v", p)
		}
		// An invalid spec's selection is unknown; a broken source's is not.
		if got, want := p.States["acme"].Selected, acme.Invalid == ""; got != want {
			t.Fatalf("Selected = %v, want %v: %+v", got, want, p.States["acme"])
		}
	}
}

// A namespace that stops being selected loses the attachments; copies
// retire once unused.
func TestUnselectedNamespaceDetachesAndRetires(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, onlyNamespacesLabelled(t, "team", "other"))
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")},
		sa("default", []string{"acme"}, map[string]string{"acme": "acme"}))
	s, _ = converge(t, s)
	if len(list(s, "default")) != 0 || len(s.Copies) != 0 {
		t.Fatalf("left: %v, %v", list(s, "default"), s.Copies)
	}
}

// A ServiceAccount whose record was changed by someone else is left alone.
func TestTamperedRecordIsLeftAlone(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	bad := sa("default", []string{"theirs"}, nil)
	bad.RecordProblem = "unproven"
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")}, bad)
	p := planner.Compute(s)
	if !p.Empty() || p.States["acme"].Reason != v1alpha1.ReasonRecordInvalid {
		t.Fatalf("plan: %+v", p)
	}
}

// A name a user listed before the controller came is never claimed, so it
// is never removed.
func TestPreexistingEntryIsNeverClaimed(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	s := snapshot([]planner.ClusterPullSecret{acme}, nil, sa("default", []string{"acme"}, nil))
	s, last := converge(t, s)
	if last.States["acme"].Ready != true || len(s.ServiceAccounts[0].Record) != 0 {
		t.Fatalf("record %v, state %+v", s.ServiceAccounts[0].Record, last.States["acme"])
	}
	s.ClusterPullSecrets[0].Deleting = true
	s, _ = converge(t, s)
	if got := list(s, "default"); !slices.Equal(got, []string{"acme"}) {
		t.Fatalf("default lists %v", got)
	}
}

// Copies of a ClusterPullSecret that no longer exists (or was recreated)
// are retired once unused; the new one waits for the name.
func TestOrphanCopies(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	orphan := copyOf(acme, "acme")
	orphan.OwnerUID = "uid-of-an-earlier-acme"
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{orphan}, sa("default", nil, nil))
	s.Pods = []planner.Pod{{Name: "web", UID: "p", SecretRefs: []string{"acme"}}}
	p := planner.Compute(s)
	if !p.Empty() || p.States["acme"].Reason != v1alpha1.ReasonConflict {
		t.Fatalf("plan: %+v", p)
	}
	s.Pods = nil
	s, last := converge(t, s)
	if !last.States["acme"].Ready || s.Copies[0].OwnerUID != acme.UID {
		t.Fatalf("state %+v, copies %+v", last.States["acme"], s.Copies)
	}
}

// A copy being deleted (a finalizer holds it) is waited for, not recreated
// over, and its name is not attached meanwhile.
func TestCopyBeingDeletedIsWaitedFor(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	k := copyOf(acme, "acme")
	k.Deleting = true
	// Where the name is attached already, it stays: the copy is made again
	// once the old one is gone.
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{k}, sa("default", nil, nil),
		sa("builder", []string{"acme"}, map[string]string{"acme": "acme"}))
	p := planner.Compute(s)
	if !p.Empty() || p.States["acme"].Reason != v1alpha1.ReasonProgressing {
		t.Fatalf("plan: %+v", p)
	}
}

// Two ClusterPullSecrets created in the same second wanting a free name:
// the first by name takes it, whatever the input order.
func TestSameCreationTimeTheNameDecides(t *testing.T) {
	t.Parallel()
	alpha, beta := cps(t, "alpha", 0, named("reg")), cps(t, "beta", 0, named("reg"))
	for _, order := range [][]planner.ClusterPullSecret{{alpha, beta}, {beta, alpha}} {
		s, last := converge(t, snapshot(order, nil, sa("default", nil, nil)))
		if len(s.Copies) != 1 || s.Copies[0].Owner != "alpha" || last.States["beta"].Reason != v1alpha1.ReasonConflict {
			t.Fatalf("copies %+v, states %+v", s.Copies, last.States)
		}
	}
}

// A conflict says what holds the name.
func TestConflictSaysWhatHoldsTheName(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 10, named("reg"))
	other := cps(t, "other", 0, named("reg"))
	renamed := cps(t, "other", 0, named("new"))
	frozen := cps(t, "other", 0, named("reg"), func(c *planner.ClusterPullSecret) { c.Source = planner.Source{Problem: v1alpha1.ReasonSourceNotFound} })
	orphan := copyOf(other, "reg")
	orphan.OwnerUID = "uid-of-an-earlier-other"
	forged := copyOf(other, "reg")
	forged.Proven = false
	for _, tt := range []struct {
		name  string
		other []planner.ClusterPullSecret
		copy  planner.Copy
		want  string
	}{
		{"another holds it", []planner.ClusterPullSecret{other}, copyOf(other, "reg"), "ClusterPullSecret other already holds Secret reg"},
		{"an old copy of another", []planner.ClusterPullSecret{renamed}, copyOf(other, "reg"), "Secret reg is an old copy of ClusterPullSecret other"},
		{"a frozen one's copy", []planner.ClusterPullSecret{frozen}, copyOf(other, "reg"), "belongs to ClusterPullSecret other, which is frozen (SourceNotFound)"},
		{"a copy of one that no longer exists", nil, orphan, "made for a ClusterPullSecret that no longer exists"},
		{"a forged copy", []planner.ClusterPullSecret{other}, forged, "not made by pullsecrets (no valid ownership proof)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := snapshot(append([]planner.ClusterPullSecret{acme}, tt.other...), []planner.Copy{tt.copy}, sa("default", nil, nil))
			st := planner.Compute(s).States["acme"]
			if st.Reason != v1alpha1.ReasonConflict || !strings.Contains(st.Message, tt.want) {
				t.Fatalf("want a Conflict saying %q, got %+v", tt.want, st)
			}
		})
	}
}

// Drift: a name the controller attached, removed by hand, is attached
// again (marked as a re-attachment, which a fight counts), and nothing else
// is written.
func TestANameRemovedByHandIsAttachedAgain(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")},
		sa("default", []string{"theirs"}, map[string]string{"acme": "acme"}))
	p := planner.Compute(s)
	want := planner.Plan{ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Attach: []planner.Attachment{{Secret: "acme", By: "acme", Again: true}}}}}
	if d := cmp.Diff(want, p, cmpopts.IgnoreFields(planner.Plan{}, "States")); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
}

// A Pod whose ServiceAccount is being deleted is not restarted: admission
// would refuse its replacement once the ServiceAccount is gone.
func TestNoRestartWhileTheServiceAccountGoes(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, restarting)
	going := sa("default", []string{"acme"}, map[string]string{"acme": "acme"})
	going.Deleting = true
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")}, going)
	s.Pods = []planner.Pod{stuckPod("web-1", "default", nil, &replicaSet)}
	s.Workloads = []planner.Workload{{Owner: replicaSet, Active: true, FailureBudget: -1}}
	if p := planner.Compute(s); len(p.DeletePods) != 0 {
		t.Fatalf("restarted: %+v", p.DeletePods)
	}
}

func TestServiceAccountSelectionAndOptOut(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, onlyServiceAccounts(t, "app-*"))
	optedOut := sa("app-2", []string{"acme"}, map[string]string{"acme": "acme"})
	optedOut.Annotations = map[string]string{v1alpha1.OptOutAnnotation: "true"}
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")},
		sa("app-1", nil, nil), optedOut, sa("default", nil, nil))
	s, last := converge(t, s)
	if !slices.Equal(list(s, "app-1"), []string{"acme"}) || len(list(s, "app-2")) != 0 || len(list(s, "default")) != 0 {
		t.Fatalf("lists: %+v", s.ServiceAccounts)
	}
	if st := last.States["acme"]; !st.Ready || st.Attached != 1 {
		t.Fatalf("state: %+v", st)
	}
}

func TestTerminatingNamespaceWritesNothing(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	s := snapshot([]planner.ClusterPullSecret{acme}, nil, sa("default", nil, nil))
	s.Namespace.Terminating = true
	if p := planner.Compute(s); !p.Empty() {
		t.Fatalf("plan: %+v", p)
	}
}

// Until Pods and templates are listed, nothing is retired and no Pod is
// restarted, but copies and attachments go on.
func TestUnknownUsageHoldsRetirementAndRestarts(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("new"), restarting)
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "old")},
		sa("default", []string{"old"}, map[string]string{"old": "acme"}))
	s.Pods = []planner.Pod{stuckPod("web-1", "default", nil, &replicaSet)}
	s.Workloads = []planner.Workload{{Owner: replicaSet, Active: true, FailureBudget: -1}}
	s.UsageUnknown = true
	s, last := converge(t, s)
	if got := list(s, "default"); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("default lists %v", got)
	}
	if got := copyNames(s); !slices.Equal(got, []string{"old", "new"}) {
		t.Fatalf("copies %v: the old one must stay while usage is unknown", got)
	}
	if len(s.Pods) != 1 || !last.Empty() {
		t.Fatalf("a Pod was restarted or writes remain: %+v", last)
	}
	s.UsageUnknown = false
	if p := planner.Compute(s); len(p.DeleteCopies) != 1 || len(p.DeletePods) != 1 {
		t.Fatalf("once known: %+v", p)
	}
}
