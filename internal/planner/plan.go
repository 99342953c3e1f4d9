package planner

import (
	"maps"
	"slices"
	"time"
)

// Plan is every write for one namespace, in the order they must be made:
// copies, then ServiceAccounts, then retirements, then Pod restarts. Each
// write is safe once the writes before it are made as planned; when one
// fails, the rest are dropped and the namespace is planned again. An edit
// applied to another version of its ServiceAccount than the one planned on
// (Edit.ResourceVersion; someone wrote it meanwhile) counts as such a
// failure once made: the retirements and restarts after it assumed the
// list the plan saw.
type Plan struct {
	CreateCopies    []CopyWrite
	UpdateCopies    []CopyWrite
	ServiceAccounts []Edit
	DeleteCopies    []CopyDelete
	DeletePods      []PodRestart
	// ResignCopies are copies of ours, kept as they are (old ones still
	// used, a frozen ClusterPullSecret's), whose proof is written again
	// with the signing key.
	ResignCopies []CopyWrite
	// States has one entry per ClusterPullSecret.
	States map[string]State
	// RecheckAfter, when positive, is when the namespace must be planned
	// again though nothing changes: a backed-off re-attachment is due, or
	// a fight's report ends.
	RecheckAfter time.Duration
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool {
	return p.Writes() == 0
}

// Writes counts the plan's writes.
func (p Plan) Writes() int {
	return len(p.CreateCopies) + len(p.UpdateCopies) + len(p.ServiceAccounts) + len(p.DeleteCopies) + len(p.DeletePods) + len(p.ResignCopies)
}

// CopyWrite creates or updates the copy Name for ClusterPullSecret Owner.
type CopyWrite struct {
	Name     string
	UID      string // of the copy updated; set by the writer after a create
	Owner    string
	OwnerUID string
	// Hash is what the copy holds once written: the credential in Type.
	Hash string
	// Type is the copy's type: the source's for a create; for an update
	// the copy's own, in which its credential is written.
	Type string
	// Proof is the copy's proof as planned on, which the write tests (""
	// for a create, or when the copy is ours and signed with the signing
	// key already).
	Proof string
	// Restore: the copy's marks were changed by someone else; the write
	// tests the copy's UID instead of its proof and puts back every mark.
	Restore bool
}

// CopyDelete deletes a copy of the controller's.
type CopyDelete struct {
	Name  string
	UID   string
	Owner string
	Why   string
}

// Edit changes one ServiceAccount's imagePullSecrets and record. It is a
// change, not a result, so that a writer who finds a newer object can apply
// it again there (Apply).
type Edit struct {
	ServiceAccount string
	UID            string
	// ResourceVersion is the version of the ServiceAccount planned on.
	ResourceVersion string
	// Attach appends each name that is absent and records who attached it.
	Attach []Attachment
	// Reassign hands each listed name recorded for a ClusterPullSecret that
	// lets it go over to By, which carries its credential there: recorded
	// for By, never removed in between. A name no longer listed, or listed
	// but not recorded (the user's), is left as it is.
	Reassign []Attachment
	// Detach removes each name the record says the controller attached.
	Detach []string
	// Replacements maps a detached old name to the name replacing it (a
	// rename); the old name goes only where the new one is listed, so a
	// writer applying the edit to a newer list, from which someone removed
	// the new name meanwhile, keeps the old one.
	Replacements map[string]string
	// Forget drops record entries whose name is no longer listed.
	Forget []string
	// Adopt, when set, is the unverified record the edit takes as the
	// controller's; the writer checks that the object still holds it.
	Adopt map[string]string
	// Resign: the record is written with the signing key even when the
	// edit changes nothing else.
	Resign bool
}

// Attachment is a name and the ClusterPullSecret attaching it.
type Attachment struct {
	Secret string
	By     string
	// Again: the controller had attached it and someone else removed it.
	Again bool
}

// Apply applies the edit to a list and record (neither is modified) and
// returns the new ones and whether anything changed. A name listed before
// the controller attached it is never claimed, and only claimed names are
// ever removed.
func (e Edit) Apply(list []string, record map[string]string) ([]string, map[string]string, bool) {
	out := slices.Clone(list)
	rec := make(map[string]string, len(record)+len(e.Attach))
	maps.Copy(rec, record)
	for _, a := range e.Reassign {
		if _, ours := rec[a.Secret]; ours && slices.Contains(out, a.Secret) {
			rec[a.Secret] = a.By
		}
	}
	for _, a := range e.Attach {
		if !slices.Contains(out, a.Secret) {
			out = append(out, a.Secret)
			rec[a.Secret] = a.By
		}
	}
	for _, name := range e.Detach {
		if _, ours := rec[name]; !ours {
			continue
		}
		if next, ok := e.Replacements[name]; ok && !slices.Contains(out, next) {
			continue
		}
		out = slices.DeleteFunc(out, func(s string) bool { return s == name })
		delete(rec, name)
	}
	for _, name := range e.Forget {
		if _, ours := rec[name]; ours && !slices.Contains(out, name) {
			delete(rec, name)
		}
	}
	return out, rec, !slices.Equal(out, list) || !maps.Equal(rec, record)
}

// Affects lists the ClusterPullSecrets whose attachments the edit changes,
// given the ServiceAccount's record when planned: those attaching or
// taking over a name, and those a name handed over or detached is recorded
// for. A failed edit is reported against each.
func (e Edit) Affects(record map[string]string) []string {
	var out []string
	for _, a := range append(slices.Clone(e.Attach), e.Reassign...) {
		out = append(out, a.By)
	}
	for _, a := range e.Reassign {
		out = append(out, record[a.Secret])
	}
	for _, name := range e.Detach {
		out = append(out, record[name])
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// PodRestart deletes a Pod so that its owner recreates it with the secret.
type PodRestart struct {
	Pod            string
	UID            string
	By             string // the ClusterPullSecret
	Secret         string
	ServiceAccount string
	Owner          Owner
}

// State is a ClusterPullSecret's state in the namespace.
type State struct {
	// Selected: the namespace is selected (false for an invalid spec,
	// whose selection is unknown).
	Selected bool
	Ready    bool
	// Reason is a v1alpha1 condition reason.
	Reason  string
	Message string
	// Attached counts selected ServiceAccounts listing the secret.
	Attached int
	// Retiring lists old copies kept because something still uses them.
	Retiring []Retiring
	// Stuck lists Pods stuck on a pull that the controller will not
	// restart, and why.
	Stuck []Stuck
	// Leftovers, while the ClusterPullSecret is deleted, counts its copies
	// and attachments still here.
	Leftovers int
	// Contested lists the ServiceAccounts where someone else keeps removing
	// the name.
	Contested []Contest
}

// Contest is a ServiceAccount whose list another writer keeps taking the
// name off.
type Contest struct {
	ServiceAccount string
	Secret         string
	// Losses counts the re-attachments remembered.
	Losses int
	// Next is when the controller puts the name back (zero: it is there).
	Next time.Time
}

// Retiring is an old copy and what holds it.
type Retiring struct {
	Secret string
	HeldBy []string
}

// Stuck is a Pod that fails to pull and why it is not restarted.
type Stuck struct {
	Pod string
	Why string
}
