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

// unproven is a copy of c named name whose proof does not check (a lost
// key, a restore), holding hash.
func unproven(c planner.ClusterPullSecret, name, hash string) planner.Copy {
	k := copyOf(c, name)
	k.Proven, k.Proof, k.Hash = false, "v1.made-with-a-lost-key", hash
	return k
}

// An unproven copy is adopted only when it is the very Secret the
// controller would write there: marked for a live ClusterPullSecret by
// name and UID, with a proof, at its current name in a namespace it
// serves, holding its current credential; or when the operator asked to
// adopt every marked copy.
func TestAnUnprovenCopyIsAdoptedOnlyWhenItIsWhatTheControllerWouldWrite(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	for _, tt := range []struct {
		name    string
		copy    planner.Copy
		marked  bool // AdoptMarked
		labels  map[string]string
		adopted bool
	}{
		{"the current copy", unproven(acme, "acme", "hash-acme"), false, nil, true},
		{"an old credential", unproven(acme, "acme", "stale"), false, nil, false},
		{"an old credential, the operator adopting marked copies", unproven(acme, "acme", "stale"), true, nil, true},
		{"marked for an earlier ClusterPullSecret of the name", func() planner.Copy {
			k := unproven(acme, "acme", "hash-acme")
			k.OwnerUID = "uid-earlier"
			return k
		}(), true, nil, false},
		{"no proof at all", func() planner.Copy { k := unproven(acme, "acme", "hash-acme"); k.Proof = ""; return k }(), true, nil, false},
		{"being deleted", func() planner.Copy { k := unproven(acme, "acme", "hash-acme"); k.Deleting = true; return k }(), true, nil, false},
		{"in a namespace it no longer selects", unproven(acme, "acme", "hash-acme"), false, map[string]string{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := acme
			if tt.labels != nil {
				c = cps(t, "acme", 0, onlyNamespacesLabelled(t, "team", "other"))
			}
			s := snapshot([]planner.ClusterPullSecret{c}, []planner.Copy{tt.copy}, sa("default", []string{"acme"}, nil))
			s.AdoptMarked = tt.marked
			s.UnprovenNote = "; the ownership key was lost: see the docs"
			p := planner.Compute(s)
			wrote := slices.ContainsFunc(append(p.UpdateCopies, p.ResignCopies...), func(w planner.CopyWrite) bool { return w.Name == "acme" })
			if wrote != tt.adopted {
				t.Fatalf("adopted %v, want %v: %+v", wrote, tt.adopted, p)
			}
			st := p.States["acme"]
			if tt.adopted {
				if w := p.UpdateCopies[0]; w.Proof != tt.copy.Proof || w.Hash != "hash-acme" || w.UID != tt.copy.UID {
					t.Fatalf("the write %+v does not test the proof it was planned on", w)
				}
				return
			}
			if tt.labels == nil && (st.Reason != v1alpha1.ReasonConflict || !strings.HasSuffix(st.Message, s.UnprovenNote)) {
				t.Fatalf("state %+v: want a conflict that says how to recover", st)
			}
		})
	}
	// Adopted under AdoptMarked, an old copy nothing uses is retired.
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme"), unproven(acme, "old", "stale")}, sa("default", []string{"acme"}, nil))
	s.AdoptMarked = true
	if p := planner.Compute(s); len(p.DeleteCopies) != 1 || p.DeleteCopies[0].Name != "old" {
		t.Fatalf("want the old marked copy retired: %+v", p)
	}
}

// A record whose proof does not check (a ServiceAccount restored with a
// new UID) is adopted when every entry is a name the controller would
// attach there itself; any other entry leaves the ServiceAccount alone.
func TestAnUnverifiedRecordIsAdoptedOnlyWhenEveryEntryIsSound(t *testing.T) {
	t.Parallel()
	acme, beta := cps(t, "acme", 0), cps(t, "beta", 1)
	copies := []planner.Copy{copyOf(acme, "acme"), copyOf(beta, "beta")}
	restored := func(list []string, record map[string]string) planner.ServiceAccount {
		s := sa("default", list, nil)
		s.RecordProblem, s.Unverified = "the attachment record was not written by pullsecrets (no valid proof)", record
		return s
	}
	for _, tt := range []struct {
		name    string
		sa      planner.ServiceAccount
		marked  bool
		adopted bool
	}{
		{"restored as it was", restored([]string{"theirs", "acme", "beta"}, map[string]string{"acme": "acme", "beta": "beta"}), false, true},
		{"an entry added by hand", restored([]string{"theirs", "acme"}, map[string]string{"acme": "acme", "theirs": "acme"}), false, false},
		{"an owner swapped", restored([]string{"acme", "beta"}, map[string]string{"acme": "beta", "beta": "acme"}), false, false},
		{"an entry not listed", restored([]string{"theirs"}, map[string]string{"acme": "acme"}), false, false},
		{"an entry of a ClusterPullSecret that is gone", restored([]string{"acme", "gone"}, map[string]string{"acme": "acme", "gone": "gone"}), true, false},
		{"an old name, the operator adopting marked copies", restored([]string{"acme", "old"}, map[string]string{"acme": "acme", "old": "acme"}), true, true},
		{"an old name", restored([]string{"acme", "old"}, map[string]string{"acme": "acme", "old": "acme"}), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := snapshot([]planner.ClusterPullSecret{acme, beta}, copies, tt.sa)
			s.AdoptMarked = tt.marked
			p := planner.Compute(s)
			if !tt.adopted {
				if len(p.ServiceAccounts) != 0 || p.States["acme"].Reason != v1alpha1.ReasonRecordInvalid {
					t.Fatalf("want the ServiceAccount left alone: %+v", p)
				}
				return
			}
			if len(p.ServiceAccounts) != 1 || !p.ServiceAccounts[0].Resign || !sameRecord(p.ServiceAccounts[0].Adopt, tt.sa.Unverified) {
				t.Fatalf("want the record adopted as read: %+v", p.ServiceAccounts)
			}
			s, last := converge(t, s)
			if rec := s.ServiceAccounts[0].Record; !sameRecord(rec, tt.sa.Unverified) && !tt.marked {
				t.Fatalf("record %v", rec)
			}
			if st := last.States["acme"]; st.Reason == v1alpha1.ReasonRecordInvalid {
				t.Fatalf("still left alone: %+v", st)
			}
		})
	}
}

func sameRecord(a, b map[string]string) bool { return cmp.Equal(a, b, cmpopts.EquateEmpty()) }

// What an older key of the ring signed is signed again: a current copy by
// its update, a copy kept as it is by a proof-only write, a record by an
// edit that changes nothing else; nothing once done.
func TestOlderKeysProofsAreSignedAgain(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	current, kept, gone := copyOf(acme, "acme"), copyOf(acme, "old"), copyOf(acme, "unused")
	current.Resign, kept.Resign, gone.Resign = true, true, true
	current.Proof, kept.Proof = "v1.current", "v1.kept"
	fought := sa("default", []string{"acme", "old"}, map[string]string{"acme": "acme"})
	fought.RecordResign = true
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{current, kept, gone}, fought)
	p := planner.Compute(s)
	want := planner.Plan{
		UpdateCopies:    []planner.CopyWrite{{Name: "acme", UID: "secret-acme", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme", Proof: "v1.current"}},
		ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: "sa-default", Resign: true}},
		DeleteCopies:    []planner.CopyDelete{{Name: "unused", UID: "secret-unused", Owner: "acme", Why: "no ClusterPullSecret wants it here and nothing uses it"}},
		ResignCopies:    []planner.CopyWrite{{Name: "old", UID: "secret-old", Owner: "acme", OwnerUID: "uid-acme", Hash: "hash-acme", Proof: "v1.kept"}},
	}
	if d := cmp.Diff(want, p, cmpopts.IgnoreFields(planner.Plan{}, "States")); d != "" {
		t.Fatalf("plan (-want +got):\n%s", d)
	}
	if p.Writes() != 4 || p.Empty() {
		t.Fatalf("writes %d", p.Writes())
	}
	s = planner.After(s, p)
	if next := planner.Compute(s); !next.Empty() {
		t.Fatalf("not done once written: %+v", next)
	}
}

// A name a create found taken by a Secret that turns out to be the
// ClusterPullSecret's own copy (adopted since) is its own: no conflict, and
// the copy is written, never retired.
func TestANameFoundTakenByItsOwnAdoptedCopy(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{unproven(acme, "acme", "hash-acme")}, sa("default", nil, nil))
	s.Blocked = map[string]string{"acme": "Secret acme exists and was not made by pullsecrets"}
	p := planner.Compute(s)
	if len(p.UpdateCopies) != 1 || len(p.DeleteCopies) != 0 || len(p.ServiceAccounts) != 1 {
		t.Fatalf("want the copy adopted and attached: %+v", p)
	}
	if st := p.States["acme"]; st.Reason == v1alpha1.ReasonConflict {
		t.Fatalf("state %+v", st)
	}
}

// A record adopted under AdoptMarked holds back every ClusterPullSecret it
// names until it is written, also one that does not select the
// ServiceAccount (its name is then detached) and a Pods-mode one whose
// injection is not served yet (its name stays).
func TestAnAdoptedRecordHoldsBackWhomItNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		acme planner.ClusterPullSecret
	}{
		{"not selecting it", cps(t, "acme", 0, onlyServiceAccounts(t, "other"))},
		{"in Pods mode, not injecting yet", cps(t, "acme", 0, func(c *planner.ClusterPullSecret) { c.AttachToPods = true })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			restored := sa("default", []string{"acme"}, nil)
			restored.RecordProblem, restored.Unverified = "the attachment record was not written by pullsecrets (no valid proof)", map[string]string{"acme": "acme"}
			s := snapshot([]planner.ClusterPullSecret{tt.acme}, []planner.Copy{copyOf(tt.acme, "acme")}, restored)
			s.AdoptMarked = true
			p := planner.Compute(s)
			if len(p.ServiceAccounts) != 1 || !sameRecord(p.ServiceAccounts[0].Adopt, restored.Unverified) {
				t.Fatalf("want the record adopted: %+v", p.ServiceAccounts)
			}
			if st := p.States["acme"]; st.Ready {
				t.Fatalf("Ready before the adopted record is written: %+v", st)
			}
		})
	}
}

// A copy of ours whose marks someone changed (Restore) is written back
// whole, even when it holds the current credential, and the write says so;
// the ClusterPullSecret is not Ready until it is.
func TestACopyWhoseMarksChangedIsWrittenBack(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	for _, hash := range []string{"hash-acme", "", "someone-elses"} {
		k := copyOf(acme, "acme")
		k.Restore, k.Hash, k.Proof = true, hash, ""
		s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{k}, sa("default", []string{"acme"}, map[string]string{"acme": "acme"}))
		p := planner.Compute(s)
		if len(p.UpdateCopies) != 1 || !p.UpdateCopies[0].Restore || p.UpdateCopies[0].UID != k.UID || p.UpdateCopies[0].Hash != "hash-acme" {
			t.Fatalf("holding %q: want the copy written back whole: %+v", hash, p.UpdateCopies)
		}
		if st := p.States["acme"]; st.Ready {
			t.Fatalf("holding %q: Ready before the copy is written back: %+v", hash, st)
		}
	}
	// Its marks put back, it is an ordinary copy: nothing more to write.
	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme")}, sa("default", []string{"acme"}, map[string]string{"acme": "acme"}))
	if p := planner.Compute(s); p.Writes() != 0 || !p.States["acme"].Ready {
		t.Fatalf("a current copy: %+v", p)
	}
}

// A copy to restore is the controller's only to put back: a name where
// admission refused that (Blocked) is reported, not written again; an old
// name is never retired; and once written, the plan is a fixpoint, also
// for a copy restored through its create (it was not listed).
func TestACopyToRestoreIsPutBackOnly(t *testing.T) {
	t.Parallel()
	acme := cps(t, "acme", 0)
	restore := func(name string) planner.Copy {
		k := copyOf(acme, name)
		k.Restore, k.Hash, k.Proof = true, "", ""
		return k
	}
	record := map[string]string{"acme": "acme"}

	s := snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{restore("acme")}, sa("default", []string{"acme"}, record))
	s.Blocked = map[string]string{"acme": "Secret acme is a copy pullsecrets made, but its marks were removed; delete it"}
	p := planner.Compute(s)
	if p.Writes() != 0 || p.States["acme"].Reason != v1alpha1.ReasonConflict || p.States["acme"].Message != s.Blocked["acme"] {
		t.Fatalf("a refused restore: want it reported and not written again: %+v", p)
	}

	s = snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{copyOf(acme, "acme"), restore("old")}, sa("default", []string{"acme"}, record))
	if p := planner.Compute(s); len(p.DeleteCopies) != 0 {
		t.Fatalf("an old copy to restore was retired: %+v", p.DeleteCopies)
	}

	s = snapshot([]planner.ClusterPullSecret{acme}, []planner.Copy{restore("acme")}, sa("default", []string{"acme"}, record))
	p = planner.Compute(s)
	if next := planner.Compute(planner.After(s, p)); next.Writes() != 0 || !next.States["acme"].Ready {
		t.Fatalf("not a fixpoint once restored: %+v", next)
	}

	// Its create met the copy without its labels: restored, not listed.
	s = snapshot([]planner.ClusterPullSecret{acme}, nil, sa("default", []string{"acme"}, record))
	p = planner.Compute(s)
	if len(p.CreateCopies) != 1 {
		t.Fatalf("want a create: %+v", p)
	}
	w := p.CreateCopies[0]
	w.UID, w.Restore = "secret-acme", true
	done := planner.Plan{UpdateCopies: []planner.CopyWrite{w}}
	if next := planner.Compute(planner.After(s, done)); next.Writes() != 0 || !next.States["acme"].Ready {
		t.Fatalf("a copy restored through its create is written again: %+v", next)
	}
}
