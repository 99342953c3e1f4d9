package controller

import (
	"reflect"
	"sync"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// board holds each namespace's last planned state per ClusterPullSecret,
// as the namespace reconciler left it. It is a cache of what the cluster
// shows: the ClusterPullSecret reconciler computes a missing entry from
// the caches (after a restart, say), so its loss changes no status. It
// holds one entry per namespace that matters to a ClusterPullSecret, and
// drops namespaces and ClusterPullSecrets that go.
type board struct {
	mu   sync.Mutex
	byNS map[string]map[string]planner.State
}

func newBoard() *board { return &board{byNS: map[string]map[string]planner.State{}} }

// worthKeeping: a state the status reports on.
func worthKeeping(st planner.State) bool {
	return st.Selected || len(st.Retiring) > 0 || len(st.Stuck) > 0 || st.Leftovers > 0
}

// set replaces a namespace's states and returns the ClusterPullSecrets
// whose state there changed.
func (b *board) set(ns string, states map[string]planner.State) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.byNS[ns]
	next := map[string]planner.State{}
	var changed []string
	for cps, st := range states {
		if !worthKeeping(st) {
			continue
		}
		next[cps] = st
		if prev, ok := old[cps]; !ok || !reflect.DeepEqual(prev, st) {
			changed = append(changed, cps)
		}
	}
	for cps := range old {
		if _, ok := next[cps]; !ok {
			changed = append(changed, cps)
		}
	}
	if len(next) == 0 {
		delete(b.byNS, ns)
	} else {
		b.byNS[ns] = next
	}
	return changed
}

// get returns a namespace's state for a ClusterPullSecret; known is false
// when the namespace has not reported since this process started.
func (b *board) get(ns, cps string) (st planner.State, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, known := b.byNS[ns]
	return m[cps], known
}

// each calls f for every namespace holding a state of cps.
func (b *board) each(cps string, f func(ns string, st planner.State)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ns, m := range b.byNS {
		if st, ok := m[cps]; ok {
			f(ns, st)
		}
	}
}

// dropNamespace forgets a namespace and returns the ClusterPullSecrets it
// held states of.
func (b *board) dropNamespace(ns string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for cps := range b.byNS[ns] {
		out = append(out, cps)
	}
	delete(b.byNS, ns)
	return out
}

// dropCPS forgets a ClusterPullSecret everywhere.
func (b *board) dropCPS(cps string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ns, m := range b.byNS {
		delete(m, cps)
		if len(m) == 0 {
			delete(b.byNS, ns)
		}
	}
}

// put records one computed state, unless the namespace reconciler has
// reported since.
func (b *board) put(ns, cps string, st planner.State) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !worthKeeping(st) {
		return
	}
	m := b.byNS[ns]
	if m == nil {
		m = map[string]planner.State{}
		b.byNS[ns] = m
	}
	if _, ok := m[cps]; !ok {
		m[cps] = st
	}
}
