package controller

import (
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
type ownCopies struct {
	mu   sync.Mutex
	byNS map[string]map[string]ownCopy
}

type ownCopy struct {
	uid      types.UID
	owner    string
	ownerUID string
}

func newOwnCopies() *ownCopies { return &ownCopies{byNS: map[string]map[string]ownCopy{}} }

// remember records the copy ns/name as the controller's.
func (o *ownCopies) remember(ns, name string, c ownCopy) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.byNS[ns]
	if m == nil {
		m = map[string]ownCopy{}
		o.byNS[ns] = m
	}
	if m[name] != c {
		m[name] = c
	}
}

// lookup returns the copy of ours last known at ns/name.
func (o *ownCopies) lookup(ns, name string) (ownCopy, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c, ok := o.byNS[ns][name]
	return c, ok
}

// forget drops ns/name if it is still the copy uid.
func (o *ownCopies) forget(ns, name string, uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.byNS[ns]
	if c, ok := m[name]; ok && c.uid == uid {
		delete(m, name)
		if len(m) == 0 {
			delete(o.byNS, ns)
		}
	}
}

// prune drops what is remembered in ns of the names keep refuses.
func (o *ownCopies) prune(ns string, keep func(name string) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.byNS[ns]
	for name := range m {
		if !keep(name) {
			delete(m, name)
		}
	}
	if m != nil && len(m) == 0 {
		delete(o.byNS, ns)
	}
}

// forgetNamespace drops everything known of a namespace that is gone.
func (o *ownCopies) forgetNamespace(ns string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.byNS, ns)
}
