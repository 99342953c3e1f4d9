package controller

import (
	"cmp"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// copyMeta is what we know of a copy without reading its data.
type copyMeta struct {
	Namespace, Name string
	UID             types.UID
	ResourceVersion string
	Owner           string // ClusterPullSecret name, from OwnerLabel
	Hash            string // DataHashAnnotation
}

// copyWrite remembers a write of ours until the cache shows it, so that a
// reconcile running before the watch event arrives neither creates the copy
// twice (and mistakes our own copy for a conflict) nor rewrites it.
type copyWrite struct {
	basedOn string // resourceVersion the cache showed when we wrote ("" for a create)
	result  *copyMeta
	deleted bool
}

// saWrite remembers a ServiceAccount we wrote until the cache shows it:
// merging on the stale cached object would only earn a conflict.
type saWrite struct {
	basedOn string
	result  *corev1.ServiceAccount
}

// writeLog is the overlay of recent writes over the caches.
type writeLog struct {
	mu     sync.Mutex
	copies map[types.NamespacedName]copyWrite
	sas    map[types.NamespacedName]saWrite
}

func newWriteLog() *writeLog {
	return &writeLog{copies: map[types.NamespacedName]copyWrite{}, sas: map[types.NamespacedName]saWrite{}}
}

// serviceAccount returns our last write of the ServiceAccount while the
// cache still shows the version that write replaced, else the cached one.
func (w *writeLog) serviceAccount(cached *corev1.ServiceAccount) *corev1.ServiceAccount {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	w.mu.Lock()
	defer w.mu.Unlock()
	wr, ok := w.sas[key]
	if !ok {
		return cached
	}
	if cached.ResourceVersion != wr.basedOn {
		delete(w.sas, key)
		return cached
	}
	return wr.result
}

func (w *writeLog) recordServiceAccount(basedOn string, result *corev1.ServiceAccount) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sas[types.NamespacedName{Namespace: result.Namespace, Name: result.Name}] = saWrite{basedOn: basedOn, result: result.DeepCopy()}
}

// copy returns the best knowledge of a copy: the cache's, unless it still
// shows the state our last write was based on.
func (w *writeLog) copy(key types.NamespacedName, cached *copyMeta) *copyMeta {
	w.mu.Lock()
	defer w.mu.Unlock()
	wr, ok := w.copies[key]
	if !ok {
		return cached
	}
	cachedRV := ""
	if cached != nil {
		cachedRV = cached.ResourceVersion
	}
	if cachedRV != wr.basedOn {
		// The cache has moved past what we wrote on: it knows better.
		delete(w.copies, key)
		return cached
	}
	if wr.deleted {
		return nil
	}
	return wr.result
}

func (w *writeLog) recordCopy(key types.NamespacedName, basedOn string, result *copyMeta, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.copies[key] = copyWrite{basedOn: basedOn, result: result, deleted: deleted}
}

// nsState is one namespace's state for one ClusterPullSecret, as the
// namespace reconciler last saw it.
type nsState struct {
	Ready    bool
	Reason   string
	Message  string
	Attached int
	Pending  int
}

// board collects namespace states for the ClusterPullSecret reconciler.
type board struct {
	mu    sync.Mutex
	byCPS map[string]map[string]nsState
}

func newBoard() *board { return &board{byCPS: map[string]map[string]nsState{}} }

// set records the state and reports whether it changed.
func (b *board) set(cps, ns string, st nsState) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.byCPS[cps]
	if m == nil {
		m = map[string]nsState{}
		b.byCPS[cps] = m
	}
	if old, ok := m[ns]; ok && old == st {
		return false
	}
	m[ns] = st
	return true
}

// drop forgets a namespace for a ClusterPullSecret and reports whether it
// knew it.
func (b *board) drop(cps, ns string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.byCPS[cps][ns]; !ok {
		return false
	}
	delete(b.byCPS[cps], ns)
	return true
}

func (b *board) forget(cps string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byCPS, cps)
}

// maxFailing bounds status.failingNamespaces.
const maxFailing = 20

type summary struct {
	Known     int
	Ready     int
	Attached  int
	Pending   int
	Failing   []v1alpha1.NamespaceFailure
	Reasons   map[string]int
	Unhealthy int
}

// summarize aggregates the states of the namespaces in matched.
func (b *board) summarize(cps string, matched map[string]bool) summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := summary{Reasons: map[string]int{}}
	for ns, st := range b.byCPS[cps] {
		// Pending retirements also live in namespaces no longer matched.
		s.Pending += st.Pending
		if !matched[ns] {
			continue
		}
		s.Known++
		s.Attached += st.Attached
		if st.Ready {
			s.Ready++
			continue
		}
		s.Unhealthy++
		s.Reasons[st.Reason]++
		s.Failing = append(s.Failing, v1alpha1.NamespaceFailure{Namespace: ns, Reason: st.Reason, Message: st.Message})
	}
	slices.SortFunc(s.Failing, func(a, b v1alpha1.NamespaceFailure) int { return cmp.Compare(a.Namespace, b.Namespace) })
	if len(s.Failing) > maxFailing {
		s.Failing = s.Failing[:maxFailing]
	}
	return s
}

// memo remembers one-off facts (conflicts reported, Pods reported) so that
// Events are not repeated on every reconcile.
type memo struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func newMemo() *memo { return &memo{seen: map[string]time.Time{}} }

// first reports whether key is new (or older than ttl), and remembers it.
func (m *memo) first(key string, ttl time.Duration, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.seen[key]; ok && now.Sub(t) < ttl {
		return false
	}
	m.seen[key] = now
	return true
}

func (m *memo) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, key)
}
