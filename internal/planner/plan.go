package planner

import (
	"slices"
)

// Plan is every write for one namespace, in the order they must be made:
// copies, then ServiceAccounts, then retirements, then Pod restarts. Each
// write is safe on its own; when one fails, the rest are dropped and the
// namespace is planned again.
type Plan struct {
	CreateCopies    []CopyWrite
	UpdateCopies    []CopyWrite
	ServiceAccounts []Edit
	DeleteCopies    []CopyDelete
	DeletePods      []PodRestart
	// States has one entry per ClusterPullSecret.
	States map[string]State
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool {
	return len(p.CreateCopies)+len(p.UpdateCopies)+len(p.ServiceAccounts)+len(p.DeleteCopies)+len(p.DeletePods) == 0
}

// Writes counts the plan's writes.
func (p Plan) Writes() int {
	return len(p.CreateCopies) + len(p.UpdateCopies) + len(p.ServiceAccounts) + len(p.DeleteCopies) + len(p.DeletePods)
}

// CopyWrite creates or updates the copy Name for ClusterPullSecret Owner.
type CopyWrite struct {
	Name     string
	UID      string // of the copy updated; set by the writer after a create
	Owner    string
	OwnerUID string
	Hash     string
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
	// Attach appends each name that is absent and records who attached it.
	// A name already listed and recorded (for a ClusterPullSecret that lets
	// it go) is handed over: recorded for By, never removed. A name listed
	// but not recorded is the user's and stays so.
	Attach []Attachment
	// Detach removes each name the record says the controller attached.
	Detach []string
	// Forget drops record entries whose name is no longer listed.
	Forget []string
}

// Attachment is a name and the ClusterPullSecret attaching it.
type Attachment struct {
	Secret string
	By     string
}

// Apply applies the edit to a list and record (neither is modified) and
// returns the new ones and whether anything changed. A name listed before
// the controller attached it is never claimed, and only claimed names are
// ever removed.
func (e Edit) Apply(list []string, record map[string]string) ([]string, map[string]string, bool) {
	out := slices.Clone(list)
	rec := make(map[string]string, len(record)+len(e.Attach))
	for k, v := range record {
		rec[k] = v
	}
	changed := false
	for _, a := range e.Attach {
		if slices.Contains(out, a.Secret) {
			if by, ours := rec[a.Secret]; ours && by != a.By {
				rec[a.Secret] = a.By
				changed = true
			}
			continue
		}
		out = append(out, a.Secret)
		rec[a.Secret] = a.By
		changed = true
	}
	for _, name := range e.Detach {
		if _, ours := rec[name]; !ours {
			continue
		}
		if slices.Contains(out, name) {
			out = slices.DeleteFunc(out, func(s string) bool { return s == name })
		}
		delete(rec, name)
		changed = true
	}
	for _, name := range e.Forget {
		if _, ours := rec[name]; ours && !slices.Contains(out, name) {
			delete(rec, name)
			changed = true
		}
	}
	return out, rec, changed
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
