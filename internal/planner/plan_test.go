package planner_test

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

func TestEditApply(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		list       []string
		record     map[string]string
		edit       planner.Edit
		wantList   []string
		wantRecord map[string]string
		changed    bool
	}{
		{"attach appends and records", []string{"theirs"}, nil,
			planner.Edit{Attach: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"theirs", "reg"}, map[string]string{"reg": "acme"}, true},
		{"attach leaves a name listed by hand unrecorded", []string{"reg"}, nil,
			planner.Edit{Attach: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"reg"}, nil, false},
		{"attach does not take over a name recorded for another", []string{"reg"}, map[string]string{"reg": "other"},
			planner.Edit{Attach: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"reg"}, map[string]string{"reg": "other"}, false},
		{"reassign hands a recorded name over", []string{"theirs", "reg"}, map[string]string{"reg": "other"},
			planner.Edit{Reassign: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"theirs", "reg"}, map[string]string{"reg": "acme"}, true},
		{"reassign to the one it is recorded for changes nothing", []string{"reg"}, map[string]string{"reg": "acme"},
			planner.Edit{Reassign: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"reg"}, map[string]string{"reg": "acme"}, false},
		{"reassign never claims a name listed by hand", []string{"reg"}, nil,
			planner.Edit{Reassign: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"reg"}, nil, false},
		{"reassign never lists a name someone removed meanwhile", []string{"theirs"}, map[string]string{"reg": "other"},
			planner.Edit{Reassign: []planner.Attachment{{Secret: "reg", By: "acme"}}},
			[]string{"theirs"}, map[string]string{"reg": "other"}, false},
		{"detach removes a recorded name, every time it is listed", []string{"reg", "theirs", "reg"}, map[string]string{"reg": "acme"},
			planner.Edit{Detach: []string{"reg"}},
			[]string{"theirs"}, map[string]string{}, true},
		{"detach never removes a name listed by hand", []string{"reg"}, nil,
			planner.Edit{Detach: []string{"reg"}},
			[]string{"reg"}, nil, false},
		{"detach of a recorded name no longer listed drops the record", []string{"theirs"}, map[string]string{"reg": "acme"},
			planner.Edit{Detach: []string{"reg"}},
			[]string{"theirs"}, map[string]string{}, true},
		{"detach of an old name once its replacement is listed", []string{"new", "old"}, map[string]string{"old": "acme"},
			planner.Edit{Detach: []string{"old"}, Replacements: map[string]string{"old": "new"}},
			[]string{"new"}, map[string]string{}, true},
		{"detach of an old name whose replacement someone removed meanwhile", []string{"old"}, map[string]string{"old": "acme"},
			planner.Edit{Detach: []string{"old"}, Replacements: map[string]string{"old": "new"}},
			[]string{"old"}, map[string]string{"old": "acme"}, false},
		{"a rename in one edit: attach the new name, detach the old", []string{"theirs", "old"}, map[string]string{"old": "acme"},
			planner.Edit{Attach: []planner.Attachment{{Secret: "new", By: "acme"}}, Detach: []string{"old"}, Replacements: map[string]string{"old": "new"}},
			[]string{"theirs", "new"}, map[string]string{"new": "acme"}, true},
		{"forget drops a record entry whose name is gone", []string{"theirs"}, map[string]string{"reg": "acme"},
			planner.Edit{Forget: []string{"reg"}},
			[]string{"theirs"}, map[string]string{}, true},
		{"forget keeps a record entry whose name is listed", []string{"reg"}, map[string]string{"reg": "acme"},
			planner.Edit{Forget: []string{"reg"}},
			[]string{"reg"}, map[string]string{"reg": "acme"}, false},
		{"forget of a name not recorded changes nothing", nil, nil,
			planner.Edit{Forget: []string{"reg"}},
			nil, nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list, record := slices.Clone(tt.list), maps.Clone(tt.record)
			gotList, gotRecord, changed := tt.edit.Apply(list, record)
			if d := cmp.Diff(tt.wantList, gotList, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("list (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantRecord, gotRecord, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("record (-want +got):\n%s", d)
			}
			if changed != tt.changed {
				t.Errorf("changed = %v, want %v", changed, tt.changed)
			}
			if !slices.Equal(list, tt.list) || !maps.Equal(record, tt.record) {
				t.Errorf("the input was modified: %v %v", list, record)
			}
		})
	}
}

// Edit.Apply does what docs/controller.md says an edit does
// (applyAsDocumented, written apart), on lists and edits drawn at random,
// and keeps its promises on the result: a name not recorded is never
// removed nor recorded, and "changed" says whether anything did.
func TestEditApplyRandomized(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(19, 3))
	names := []string{"a", "b", "c", "d"}
	owners := []string{"x", "y"}
	some := func() []string {
		var out []string
		for _, n := range names {
			if r.IntN(3) == 0 {
				out = append(out, n)
			}
		}
		return out
	}
	attachments := func() []planner.Attachment {
		var out []planner.Attachment
		for _, n := range some() {
			out = append(out, planner.Attachment{Secret: n, By: owners[r.IntN(len(owners))]})
		}
		return out
	}
	changes := 0
	for range 20000 {
		list := some()
		if len(list) > 0 && r.IntN(4) == 0 {
			list = append(list, list[0]) // listed twice
		}
		record := map[string]string{}
		for _, n := range some() {
			record[n] = owners[r.IntN(len(owners))]
		}
		e := planner.Edit{Attach: attachments(), Reassign: attachments(), Detach: some(), Forget: some()}
		for _, n := range e.Detach {
			if r.IntN(2) == 0 {
				if e.Replacements == nil {
					e.Replacements = map[string]string{}
				}
				e.Replacements[n] = names[r.IntN(len(names))]
			}
		}
		gotList, gotRecord, changed := e.Apply(list, record)
		wantList, wantRecord := applyAsDocumented(list, record, e)
		if !slices.Equal(gotList, wantList) || !maps.Equal(gotRecord, wantRecord) {
			t.Fatalf("%+v on %v %v: Apply gives %v %v, the docs %v %v", e, list, record, gotList, gotRecord, wantList, wantRecord)
		}
		for _, n := range list {
			_, recorded := record[n]
			if _, now := gotRecord[n]; !recorded && (now || !slices.Contains(gotList, n)) {
				t.Fatalf("%+v on %v %v: the user's %s was removed or recorded: %v %v", e, list, record, n, gotList, gotRecord)
			}
		}
		if same := slices.Equal(list, gotList) && maps.Equal(record, gotRecord); changed == same {
			t.Fatalf("%+v on %v %v: changed = %v, but the result is %v %v", e, list, record, changed, gotList, gotRecord)
		}
		if changed {
			changes++
		}
	}
	if changes < 5000 {
		t.Fatalf("only %d edits changed anything", changes)
	}
}

// applyAsDocumented is a ServiceAccount edit as docs/controller.md
// describes it, written apart from Edit.Apply: reassign records a listed,
// recorded name for another; attach appends an absent name and records it
// (a name listed by hand stays unrecorded); detach removes a recorded name (an old name only where
// the name replacing it is listed); forget drops a record entry whose name
// is gone.
func applyAsDocumented(list []string, record map[string]string, e planner.Edit) ([]string, map[string]string) {
	list, rec := slices.Clone(list), maps.Clone(record)
	if rec == nil {
		rec = map[string]string{}
	}
	for _, a := range e.Reassign {
		if _, recorded := rec[a.Secret]; recorded && slices.Contains(list, a.Secret) {
			rec[a.Secret] = a.By
		}
	}
	for _, a := range e.Attach {
		if !slices.Contains(list, a.Secret) {
			list = append(list, a.Secret)
			rec[a.Secret] = a.By
		}
	}
	for _, n := range e.Detach {
		if next, renamed := e.Replacements[n]; renamed && !slices.Contains(list, next) {
			continue // the new name is not there: the old one stays
		}
		if _, recorded := rec[n]; recorded {
			var kept []string
			for _, m := range list {
				if m != n {
					kept = append(kept, m)
				}
			}
			list = kept
			delete(rec, n)
		}
	}
	for _, n := range e.Forget {
		if _, recorded := rec[n]; recorded && !slices.Contains(list, n) {
			delete(rec, n)
		}
	}
	return list, rec
}

// A failed edit is reported against every ClusterPullSecret whose
// attachments it changes, once each, and no one else.
func TestEditAffects(t *testing.T) {
	t.Parallel()
	record := map[string]string{"old": "a", "shared": "b", "kept": "c", "theirs-too": ""}
	for _, tt := range []struct {
		name string
		e    planner.Edit
		want []string
	}{
		{"nothing", planner.Edit{}, nil},
		{"attaching", planner.Edit{Attach: []planner.Attachment{{Secret: "new", By: "d"}, {Secret: "other", By: "d"}}}, []string{"d"}},
		{"detaching", planner.Edit{Detach: []string{"old"}}, []string{"a"}},
		{"handing over: both sides", planner.Edit{Reassign: []planner.Attachment{{Secret: "shared", By: "d"}}}, []string{"b", "d"}},
		{"a rename: the old name's and the new name's", planner.Edit{
			Attach: []planner.Attachment{{Secret: "new", By: "a"}}, Detach: []string{"old"}, Replacements: map[string]string{"old": "new"},
		}, []string{"a"}},
		{"a name nobody is recorded for", planner.Edit{Detach: []string{"unknown", "theirs-too"}}, nil},
		{"forgetting changes no one's attachments", planner.Edit{Forget: []string{"kept"}}, nil},
		{"everything", planner.Edit{
			Attach: []planner.Attachment{{Secret: "new", By: "e"}}, Reassign: []planner.Attachment{{Secret: "shared", By: "d"}},
			Detach: []string{"old"}, Forget: []string{"kept"},
		}, []string{"a", "b", "d", "e"}},
	} {
		if got := tt.e.Affects(record); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
