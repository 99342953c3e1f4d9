package planner_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

func TestAfter(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	base := func() planner.Snapshot {
		old := copyOf(acme, "old")
		stale := copyOf(acme, "acme")
		stale.Hash = "stale"
		fought := sa("default", []string{"theirs", "old"}, map[string]string{"old": "acme"})
		fought.Reattached = map[string][]time.Time{"acme": {epoch}}
		s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{stale, old, copyOf(acme, "other")},
			fought, sa("builder", []string{"theirs"}, nil))
		s.Blocked = map[string]string{"taken": "Secret taken exists"}
		s.Pods = []planner.Pod{{Name: "web-1", UID: "p1"}, {Name: "web-2", UID: "p2"}}
		return s
	}
	for _, tt := range []struct {
		name   string
		plan   planner.Plan
		mutate func(*planner.Snapshot) // the expected change of base()
	}{
		{"an empty plan changes nothing", planner.Plan{}, func(*planner.Snapshot) {}},
		{"a created copy is a proven copy with the UID the writer set", planner.Plan{
			CreateCopies: []planner.CopyWrite{{Name: "new", UID: "secret-new", Owner: "acme", OwnerUID: "uid-acme", Hash: "h"}},
		}, func(s *planner.Snapshot) {
			s.Copies = append(s.Copies, planner.Copy{Name: "new", UID: "secret-new", Owner: "acme", OwnerUID: "uid-acme", Hash: "h", Proven: true})
		}},
		{"an update changes the hash of that copy only", planner.Plan{
			UpdateCopies: []planner.CopyWrite{{Name: "acme", UID: "secret-acme", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme"}},
		}, func(s *planner.Snapshot) { s.Copies[0].Hash = "hash-acme" }},
		{"a deleted copy is gone", planner.Plan{
			DeleteCopies: []planner.CopyDelete{{Name: "old", UID: "secret-old", Owner: "acme"}},
		}, func(s *planner.Snapshot) { s.Copies = []planner.Copy{s.Copies[0], s.Copies[2]} }},
		{"edits apply to their ServiceAccount only", planner.Plan{
			ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default",
				Attach: []planner.Attachment{{Secret: "acme", By: "acme"}}, Detach: []string{"old"}, Replacements: map[string]string{"old": "acme"}}},
		}, func(s *planner.Snapshot) {
			s.ServiceAccounts[0].PullSecrets = []string{"theirs", "acme"}
			s.ServiceAccounts[0].Record = map[string]string{"acme": "acme"}
		}},
		{"a re-attachment is remembered at Now, as the writer's tracker does", planner.Plan{
			ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default",
				Attach: []planner.Attachment{{Secret: "acme", By: "acme", Again: true}}}},
		}, func(s *planner.Snapshot) {
			s.ServiceAccounts[0].PullSecrets = []string{"theirs", "old", "acme"}
			s.ServiceAccounts[0].Record = map[string]string{"old": "acme", "acme": "acme"}
			s.ServiceAccounts[0].Reattached = map[string][]time.Time{"acme": {epoch, s.Now}}
		}},
		{"a first attachment is not a re-attachment", planner.Plan{
			ServiceAccounts: []planner.Edit{{ServiceAccount: "builder", UID: "sa-builder",
				Attach: []planner.Attachment{{Secret: "acme", By: "acme"}}}},
		}, func(s *planner.Snapshot) {
			s.ServiceAccounts[1].PullSecrets = []string{"theirs", "acme"}
			s.ServiceAccounts[1].Record = map[string]string{"acme": "acme"}
		}},
		{"restarted Pods are gone, by UID", planner.Plan{
			DeletePods: []planner.PodRestart{{Pod: "web-1", UID: "p1"}},
		}, func(s *planner.Snapshot) { s.Pods = s.Pods[1:] }},
		{"every kind of write at once", planner.Plan{
			CreateCopies:    []planner.CopyWrite{{Name: "new", UID: "secret-new", Owner: "acme", OwnerUID: "uid-acme", Hash: "h"}},
			UpdateCopies:    []planner.CopyWrite{{Name: "acme", UID: "secret-acme", Hash: "hash-acme"}},
			ServiceAccounts: []planner.Edit{{ServiceAccount: "builder", Attach: []planner.Attachment{{Secret: "new", By: "acme"}}}},
			DeleteCopies:    []planner.CopyDelete{{Name: "other", UID: "secret-other"}},
			DeletePods:      []planner.PodRestart{{UID: "p2"}},
		}, func(s *planner.Snapshot) {
			s.Copies[0].Hash = "hash-acme"
			s.Copies = append(s.Copies[:2], planner.Copy{Name: "new", UID: "secret-new", Owner: "acme", OwnerUID: "uid-acme", Hash: "h", Proven: true})
			s.ServiceAccounts[1].PullSecrets = []string{"theirs", "new"}
			s.ServiceAccounts[1].Record = map[string]string{"new": "acme"}
			s.Pods = s.Pods[:1]
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := base()
			got := planner.After(in, tt.plan)
			want := base()
			tt.mutate(&want)
			opts := []cmp.Option{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(planner.ClusterPullSecret{}, "Selector", "Source.Matches")}
			if d := cmp.Diff(want, got, opts...); d != "" {
				t.Fatalf("After (-want +got):\n%s", d)
			}
			if d := cmp.Diff(base(), in, opts...); d != "" {
				t.Fatalf("the snapshot given was modified (-before +after):\n%s", d)
			}
			// The result's own slices and maps are not the input's.
			for i := range got.Copies {
				got.Copies[i].Hash = "scribbled"
			}
			for i := range got.ServiceAccounts {
				got.ServiceAccounts[i].Name = "scribbled"
			}
			got.Blocked["scribbled"] = "x"
			if d := cmp.Diff(base(), in, opts...); d != "" {
				t.Fatalf("the result shares memory with the snapshot given (-before +after):\n%s", d)
			}
		})
	}
}
