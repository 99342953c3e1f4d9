package controller

import (
	"reflect"
	"slices"
	"sync"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// board holds each namespace's last planned state per ClusterPullSecret,
// as the namespace reconciler left it. It is a cache of what the cluster
// shows: the ClusterPullSecret reconciler computes a missing entry from
// the caches (after a restart, say), so its loss changes no status. It
// holds one entry per namespace that matters to a ClusterPullSecret, and
// drops namespaces and ClusterPullSecrets that go.
//
// A namespace's states are a slice, not a map: most namespaces matter to
// one ClusterPullSecret or two, and a Go map keeps room for eight (a
// State is about 130 bytes: 1.2 KB a namespace as a map, 150 B as a
// slice).
type board struct {
	mu   sync.Mutex
	byNS map[string][]boardEntry
}

type boardEntry struct {
	cps string
	st  planner.State
}

func newBoard() *board { return &board{byNS: map[string][]boardEntry{}} }

// worthKeeping: a state the status reports on.
func worthKeeping(st planner.State) bool {
	return st.Selected || len(st.Retiring) > 0 || len(st.Stuck) > 0 || st.Leftovers > 0
}

func find(entries []boardEntry, cps string) (planner.State, bool) {
	i := slices.IndexFunc(entries, func(e boardEntry) bool { return e.cps == cps })
	if i < 0 {
		return planner.State{}, false
	}
	return entries[i].st, true
}

// set replaces a namespace's states and returns the ClusterPullSecrets
// whose state there changed.
func (b *board) set(ns string, states map[string]planner.State) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.byNS[ns]
	var next []boardEntry
	var changed []string
	for cps, st := range states {
		if !worthKeeping(st) {
			continue
		}
		next = append(next, boardEntry{cps: cps, st: st})
		if prev, ok := find(old, cps); !ok || !reflect.DeepEqual(prev, st) {
			changed = append(changed, cps)
		}
	}
	for _, e := range old {
		if _, ok := find(next, e.cps); !ok {
			changed = append(changed, e.cps)
		}
	}
	if len(next) == 0 {
		delete(b.byNS, ns)
	} else {
		b.byNS[ns] = slices.Clip(next)
	}
	return changed
}

// get returns a namespace's state for a ClusterPullSecret; known is false
// when the namespace has not reported since this process started.
func (b *board) get(ns, cps string) (st planner.State, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	entries, known := b.byNS[ns]
	st, _ = find(entries, cps)
	return st, known
}

// each calls f for every namespace holding a state of cps.
func (b *board) each(cps string, f func(ns string, st planner.State)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ns, entries := range b.byNS {
		if st, ok := find(entries, cps); ok {
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
	for _, e := range b.byNS[ns] {
		out = append(out, e.cps)
	}
	delete(b.byNS, ns)
	return out
}

// dropCPS forgets a ClusterPullSecret everywhere.
func (b *board) dropCPS(cps string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ns, entries := range b.byNS {
		if _, ok := find(entries, cps); !ok {
			continue
		}
		kept := slices.DeleteFunc(entries, func(e boardEntry) bool { return e.cps == cps })
		if len(kept) == 0 {
			delete(b.byNS, ns)
		} else {
			b.byNS[ns] = kept
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
	entries := b.byNS[ns]
	if _, ok := find(entries, cps); !ok {
		b.byNS[ns] = append(slices.Clip(entries), boardEntry{cps: cps, st: st})
	}
}
