package controller

import (
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// ownCopies remembers, per namespace, the UID of every copy the controller
// made or found proven, and the ClusterPullSecret it was made for. A Secret
// with that UID is the controller's own object whatever its marks say now:
// UIDs are the API server's and never reused, so nobody can make another
// object pass for it. A copy whose marks someone removed or changed is then
// written back whole (planner.Copy.Restore) instead of being taken for a
// stranger's Secret; writing it back grants nothing, since it is the
// credential the controller put there. The memory is the process's: after a
// restart such a copy is judged by its marks again (docs/gitops.md).
//
// A namespace's copies are a slice: it has one or a few, and a map keeps
// room for eight (about 600 bytes a namespace more).
type ownCopies struct {
	mu   sync.Mutex
	byNS map[string][]ownEntry
}

type ownCopy struct {
	uid      types.UID
	owner    string
	ownerUID string
}

type ownEntry struct {
	name string
	ownCopy
}

func newOwnCopies() *ownCopies { return &ownCopies{byNS: map[string][]ownEntry{}} }

func findOwn(entries []ownEntry, name string) int {
	return slices.IndexFunc(entries, func(e ownEntry) bool { return e.name == name })
}

// remember records the copy ns/name as the controller's.
func (o *ownCopies) remember(ns, name string, c ownCopy) {
	o.mu.Lock()
	defer o.mu.Unlock()
	entries := o.byNS[ns]
	switch i := findOwn(entries, name); {
	case i < 0:
		o.byNS[ns] = append(entries, ownEntry{name, c})
	case entries[i].ownCopy != c:
		entries[i].ownCopy = c
	}
}

// lookup returns the copy of ours last known at ns/name.
func (o *ownCopies) lookup(ns, name string) (ownCopy, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	entries := o.byNS[ns]
	if i := findOwn(entries, name); i >= 0 {
		return entries[i].ownCopy, true
	}
	return ownCopy{}, false
}

// forget drops ns/name if it is still the copy uid.
func (o *ownCopies) forget(ns, name string, uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	entries := o.byNS[ns]
	if i := findOwn(entries, name); i >= 0 && entries[i].uid == uid {
		o.set(ns, slices.Delete(entries, i, i+1))
	}
}

// prune drops what is remembered in ns of the names keep refuses.
func (o *ownCopies) prune(ns string, keep func(name string) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if entries, ok := o.byNS[ns]; ok {
		o.set(ns, slices.DeleteFunc(entries, func(e ownEntry) bool { return !keep(e.name) }))
	}
}

// set keeps a namespace's entries, or forgets it when there are none.
func (o *ownCopies) set(ns string, entries []ownEntry) {
	if len(entries) == 0 {
		delete(o.byNS, ns)
		return
	}
	o.byNS[ns] = entries
}

// forgetNamespace drops everything known of a namespace that is gone.
func (o *ownCopies) forgetNamespace(ns string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.byNS, ns)
}
