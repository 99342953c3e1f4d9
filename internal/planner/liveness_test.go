package planner_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// Every rename completes: once a ServiceAccount carries the new name with
// our copy behind it, the old name goes, whoever listed the new one.
func TestRenameOntoANameListedByHandCompletes(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, named("x"))
	for _, tt := range []struct {
		name   string
		copies []planner.Copy
		want   planner.Plan
	}{
		{"the new copy is made in the same plan", []planner.Copy{copyOf(acme, "y")}, planner.Plan{
			CreateCopies:    []planner.CopyWrite{{Name: "x", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme"}},
			ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Detach: []string{"y"}, Replacements: map[string]string{"y": "x"}}},
			DeleteCopies:    []planner.CopyDelete{{Name: "y", UID: "secret-y", Owner: "acme", Why: "no ClusterPullSecret wants it here and nothing uses it"}},
		}},
		{"the new copy is already there (a restart mid-rename)", []planner.Copy{copyOf(acme, "x"), copyOf(acme, "y")}, planner.Plan{
			ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Detach: []string{"y"}, Replacements: map[string]string{"y": "x"}}},
			DeleteCopies:    []planner.CopyDelete{{Name: "y", UID: "secret-y", Owner: "acme", Why: "no ClusterPullSecret wants it here and nothing uses it"}},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The user listed x by hand, beside our y, before the rename.
			s := snapshot([]planner.ClusterPullSecret{acme}, tt.copies, sa("default", []string{"x", "y"}, map[string]string{"y": "acme"}))
			p := planner.Compute(s)
			if d := cmp.Diff(tt.want, p, cmpopts.IgnoreFields(planner.Plan{}, "States")); d != "" {
				t.Fatalf("plan (-want +got):\n%s", d)
			}
			if st := p.States["acme"]; st.Ready || st.Reason != v1alpha1.ReasonProgressing {
				t.Fatalf("Ready before the old name is detached: %+v", st)
			}
			s, last := converge(t, s)
			if got := list(s, "default"); !slices.Equal(got, []string{"x"}) {
				t.Fatalf("default lists %v", got)
			}
			if got := copyNames(s); !slices.Equal(got, []string{"x"}) {
				t.Fatalf("copies %v", got)
			}
			if st := last.States["acme"]; !st.Ready || len(st.Retiring) != 0 {
				t.Fatalf("state %+v", st)
			}
			if rec := s.ServiceAccounts[0].Record; len(rec) != 0 {
				t.Fatalf("the user's x was claimed: record %v", rec)
			}
			// x was the user's: deleting acme leaves it listed.
			s.ClusterPullSecrets[0].Deleting = true
			s, _ = converge(t, s)
			if got := list(s, "default"); !slices.Equal(got, []string{"x"}) {
				t.Fatalf("after the deletion, default lists %v", got)
			}
		})
	}
}

// A name recorded for a ClusterPullSecret that lets it go, while another
// holds that name here with its copy, is handed over (reassigned to the
// other) instead of detached, so the ServiceAccount never goes without it.
func TestANameLetGoIsHandedOverNotDetached(t *testing.T) {
	t.Parallel()
	holder := cps(t, "holder", 0, named("reg"))
	for _, tt := range []struct {
		name   string
		leaver []planner.ClusterPullSecret
	}{
		{"the one that attached it is deleted", []planner.ClusterPullSecret{cps(t, "leaver", 10, named("reg"), func(c *planner.ClusterPullSecret) { c.Deleting = true })}},
		{"the one that attached it now selects other ServiceAccounts", []planner.ClusterPullSecret{cps(t, "leaver", 10, named("reg"), onlyServiceAccounts(t, "builder"))}},
		{"the one that attached it is gone", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := snapshot(append([]planner.ClusterPullSecret{holder}, tt.leaver...), []planner.Copy{copyOf(holder, "reg")},
				sa("default", []string{"theirs", "reg"}, map[string]string{"reg": "leaver"}))
			p := planner.Compute(s)
			want := []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Reassign: []planner.Attachment{{Secret: "reg", By: "holder"}}}}
			if d := cmp.Diff(want, p.ServiceAccounts); d != "" {
				t.Fatalf("edits (-want +got):\n%s", d)
			}
			if st := p.States["holder"]; st.Reason != v1alpha1.ReasonProgressing {
				t.Fatalf("holder while the handover is pending: %+v", st)
			}
			s, last := converge(t, s)
			if got := list(s, "default"); !slices.Equal(got, []string{"theirs", "reg"}) {
				t.Fatalf("default lists %v", got)
			}
			if rec := s.ServiceAccounts[0].Record; !cmp.Equal(rec, map[string]string{"reg": "holder"}) {
				t.Fatalf("record %v", rec)
			}
			if st := last.States["holder"]; !st.Ready {
				t.Fatalf("holder: %+v", st)
			}
			if st, ok := last.States["leaver"]; ok && st.Leftovers != 0 {
				t.Fatalf("leaver: %+v", st)
			}
		})
	}
}

// A stuck Pod is restarted for any ClusterPullSecret whose conditions
// hold, not only for the first one whose credential matches its image.
func TestRestartForAnyClusterPullSecretThatWould(t *testing.T) {
	t.Parallel()
	never := cps(t, "never", 0)
	onFailure := cps(t, "onfailure", 10, restarting)
	for _, tt := range []struct {
		name    string
		podList []string
		why     string
	}{
		{"the older one has restartPods Never", []string{"legacy"}, ""},
		{"the Pod lists the older one's name and still fails", []string{"never"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := snapshot([]planner.ClusterPullSecret{never, onFailure}, []planner.Copy{copyOf(never, "never"), copyOf(onFailure, "onfailure")},
				sa("default", []string{"never", "onfailure"}, map[string]string{"never": "never", "onfailure": "onfailure"}))
			s.Pods = []planner.Pod{stuckPod("web-1", "default", tt.podList, &replicaSet)}
			s.Workloads = []planner.Workload{{Owner: replicaSet, Active: true, FailureBudget: -1}}
			p := planner.Compute(s)
			want := []planner.PodRestart{{Pod: "web-1", UID: "uid-web-1", By: "onfailure", Secret: "onfailure", ServiceAccount: "default", Owner: replicaSet}}
			if d := cmp.Diff(want, p.DeletePods); d != "" {
				t.Fatalf("restarts (-want +got):\n%s", d)
			}
			for name, st := range p.States {
				if len(st.Stuck) != 0 {
					t.Fatalf("%s reports a Pod it restarts as stuck: %+v", name, st.Stuck)
				}
			}
		})
	}
}

// A Job's backoff budget is shared by the Pods of one plan: two stuck Pods
// of a Job that can afford one more failure get one restart.
func TestRestartsOfOnePlanShareAJobsBudget(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, restarting)
	job := planner.Owner{Group: "batch", Kind: "Job", Name: "once", UID: "j1"}
	for _, tt := range []struct {
		budget, restarts int
	}{{0, 0}, {1, 1}, {2, 2}, {-1, 3}} {
		s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")},
			sa("default", []string{"acme"}, map[string]string{"acme": "acme"}))
		s.Pods = []planner.Pod{stuckPod("job-1", "default", nil, &job), stuckPod("job-2", "default", nil, &job), stuckPod("job-3", "default", nil, &job)}
		s.Workloads = []planner.Workload{{Owner: job, Active: true, FailureBudget: tt.budget}}
		p := planner.Compute(s)
		if len(p.DeletePods) != tt.restarts {
			t.Errorf("budget %d: %d restarts, want %d: %+v", tt.budget, len(p.DeletePods), tt.restarts, p.DeletePods)
		}
		if stuck := p.States["acme"].Stuck; len(stuck) != 3-tt.restarts {
			t.Errorf("budget %d: stuck %+v", tt.budget, stuck)
		}
	}
}

// A name recorded for a ClusterPullSecret that lets it go, whose copy is an
// old copy of another that still needs it there (its new name is not
// attached yet), is reassigned to that other: detaching it would take that
// credential away.
func TestAnOldNameStillNeededIsReassignedToItsMaker(t *testing.T) {
	t.Parallel()
	// maker was renamed onto a name a forged Secret holds: it keeps old.
	maker := cps(t, "maker", 0, named("new"))
	leaver := cps(t, "leaver", 10, named("old"), func(c *planner.ClusterPullSecret) { c.Deleting = true })
	forged := planner.Copy{Name: "new", UID: "tenant", Owner: "maker", OwnerUID: "uid-maker"}
	s := snapshot([]planner.ClusterPullSecret{maker, leaver}, []planner.Copy{copyOf(maker, "old"), forged},
		sa("default", []string{"old"}, map[string]string{"old": "leaver"}))
	p := planner.Compute(s)
	want := []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Reassign: []planner.Attachment{{Secret: "old", By: "maker"}}}}
	if d := cmp.Diff(want, p.ServiceAccounts); d != "" {
		t.Fatalf("edits (-want +got):\n%s", d)
	}
	if st := p.States["leaver"]; st.Leftovers != 0 {
		t.Fatalf("leaver: %+v", st)
	}
}

// An old name is detached with its replacement named, so that a writer who
// applies the edit to a list from which someone removed the new name
// meanwhile keeps the old one; the edit names the version it was planned on.
func TestDetachedOldNamesNameTheirReplacement(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cs   []planner.ClusterPullSecret
		rec  map[string]string
	}{
		{"a rename", []planner.ClusterPullSecret{cps(t, "acme", 0, named("new"))}, map[string]string{"old": "acme"}},
		{"an old copy recorded for a ClusterPullSecret being deleted",
			[]planner.ClusterPullSecret{cps(t, "acme", 0, named("new")), cps(t, "gone", 5, named("old"), func(c *planner.ClusterPullSecret) { c.Deleting = true })},
			map[string]string{"old": "gone", "new": "acme"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			acme := tt.cs[0]
			account := sa("default", []string{"old", "new"}, tt.rec)
			account.ResourceVersion = "42"
			s := snapshot(tt.cs, []planner.Copy{copyOf(acme, "old"), copyOf(acme, "new")}, account)
			p := planner.Compute(s)
			want := []planner.Edit{{ServiceAccount: "default", UID: "sa-default", ResourceVersion: "42", Detach: []string{"old"}, Replacements: map[string]string{"old": "new"}}}
			if d := cmp.Diff(want, p.ServiceAccounts); d != "" {
				t.Fatalf("edits (-want +got):\n%s", d)
			}
		})
	}
}

// The template decides what a replacement gets: one that lists the name
// gets it even from a ServiceAccount that does not.
func TestRestartWhenTheTemplateListsTheName(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0, restarting)
	tampered := sa("default", []string{"legacy"}, nil)
	tampered.RecordProblem = "unproven"
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")}, tampered)
	s.Pods = []planner.Pod{stuckPod("web-1", "default", []string{"legacy"}, &replicaSet)}
	for _, tt := range []struct {
		template []string
		restart  bool
	}{{[]string{"legacy", "acme"}, true}, {[]string{"legacy"}, false}, {nil, false}} {
		s.Workloads = []planner.Workload{{Owner: replicaSet, PullSecrets: tt.template, Active: true, FailureBudget: -1}}
		if got := len(planner.Compute(s).DeletePods) == 1; got != tt.restart {
			t.Errorf("template %v: restart %v, want %v", tt.template, got, tt.restart)
		}
	}
}
