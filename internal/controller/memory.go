package controller

import (
	"crypto/sha256"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// The controller's only memory is below: caches of facts the informers
// have not shown yet. Each entry ends when the informer catches up or
// after a TTL, so the maps are bounded by the writes of the last minutes,
// and losing them (a restart) changes no outcome: the next plan reads the
// same facts from the API server again (at worst a create that fails).

// overlayTTL bounds how long a write of ours overrides the cache.
const overlayTTL = 2 * time.Minute

// overlay is the controller's own recent writes, laid over the caches until
// the informers show them, so that a reconcile running before the watch
// event of its previous write neither repeats it nor mistakes its own copy
// for a foreign Secret.
type overlay struct {
	mu  sync.Mutex
	now func() time.Time
	// copies is by namespace: a snapshot asks for the copies created in
	// one namespace, and a cold start has thousands in flight. A namespace
	// has one or two (a rename), so a slice: a map per namespace would
	// cost five times as much.
	copies map[string][]copyWrite
	sas    map[types.NamespacedName]saWrite
}

// copyWrite is a copy we created, updated or deleted.
type copyWrite struct {
	name    string
	at      time.Time
	uid     types.UID
	basedOn string // resourceVersion the write replaced ("" for a create)
	// result is what the cache will show of the copy, a record like the
	// cache's (nil for a delete): the write's response, whole, would be
	// held until the watch shows it, thousands at once in a cold start.
	result *copyRecord
}

// saWrite is a ServiceAccount we updated, kept as what the write changed
// over the version it replaced (its list, its attachment record and
// proof, its new resourceVersion), not as a second copy of the object:
// laid over the cached version, it gives back the object the write made.
type saWrite struct {
	at              time.Time
	basedOn         string
	uid             types.UID
	resourceVersion string
	pullSecrets     []string
	record, proof   *string // nil: absent
	// rest digests everything else of the result: laid over a cached
	// version that differs there (a write that re-read a newer version
	// after a conflict), the delta would not give back the result.
	rest [sha256.Size]byte
}

// saRest digests a ServiceAccount but for what a write of ours changes
// (the list, the record and its proof), its resourceVersion and its
// managed fields.
func saRest(sa *corev1.ServiceAccount) [sha256.Size]byte {
	meta := sa.ObjectMeta
	meta.ResourceVersion, meta.ManagedFields = "", nil
	if _, ok := meta.Annotations[v1alpha1.AttachedAnnotation]; ok || meta.Annotations[v1alpha1.AttachedProofAnnotation] != "" {
		meta.Annotations = maps.Clone(meta.Annotations)
		delete(meta.Annotations, v1alpha1.AttachedAnnotation)
		delete(meta.Annotations, v1alpha1.AttachedProofAnnotation)
	}
	raw, _ := json.Marshal(struct {
		Meta      metav1.ObjectMeta
		Secrets   []corev1.ObjectReference
		Automount *bool
	}{meta, sa.Secrets, sa.AutomountServiceAccountToken}) // cannot fail: plain data
	return sha256.Sum256(raw)
}

func annotation(m map[string]string, k string) *string {
	if v, ok := m[k]; ok {
		return &v
	}
	return nil
}

func newOverlay(now func() time.Time) *overlay {
	return &overlay{now: now, copies: map[string][]copyWrite{}, sas: map[types.NamespacedName]saWrite{}}
}

// findCopy returns the write of key; the caller holds mu.
func (o *overlay) findCopy(key types.NamespacedName) (copyWrite, bool) {
	for _, w := range o.copies[key.Namespace] {
		if w.name == key.Name {
			return w, true
		}
	}
	return copyWrite{}, false
}

// dropCopies forgets the writes of ns that drop returns true for; the
// caller holds mu.
func (o *overlay) dropCopies(ns string, drop func(copyWrite) bool) {
	left := slices.DeleteFunc(o.copies[ns], drop)
	if len(left) == 0 {
		delete(o.copies, ns)
		return
	}
	o.copies[ns] = left
}

// dropCopy forgets the write of key; the caller holds mu.
func (o *overlay) dropCopy(key types.NamespacedName) {
	o.dropCopies(key.Namespace, func(w copyWrite) bool { return w.name == key.Name })
}

// copy returns the best knowledge of a copy given what the cache shows
// (nil: nothing).
func (o *overlay) copy(key types.NamespacedName, cached *copyMeta) *copyMeta {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.findCopy(key)
	if !ok {
		return cached
	}
	switch {
	case o.now().Sub(w.at) > overlayTTL,
		cached != nil && cached.UID == w.uid && cached.ResourceVersion != w.basedOn,
		cached != nil && cached.UID != w.uid:
		// The cache moved past our write (or the object was replaced).
		o.dropCopy(key)
		return cached
	}
	if w.result == nil {
		return nil
	}
	return w.result.meta()
}

func (o *overlay) wroteCopy(key types.NamespacedName, uid types.UID, basedOn string, result *copyRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropCopy(key)
	o.copies[key.Namespace] = append(o.copies[key.Namespace], copyWrite{name: key.Name, at: o.now(), uid: uid, basedOn: basedOn, result: result})
}

// observedCopy drops what we remember of a copy once the informer has shown
// any event for it: from then on the cache knows as much as we do.
func (o *overlay) observedCopy(key types.NamespacedName, uid types.UID, resourceVersion string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.findCopy(key); ok && w.uid == uid && (w.result == nil || w.result.resourceVersion == resourceVersion || resourceVersion == "") {
		o.dropCopy(key)
	}
}

// caughtUpCopy ends the entry of key when cached, what the copies' index
// shows after the entry was made (nil: no copy of the name), already shows
// the write. The watch and the write's response race, and under load the
// watch often wins: the index's event then found no entry to end, and the
// entry stayed until the namespace's next read or the TTL. At the peak of a
// 10,000-namespace rename that was 25,000 entries and the strings of their
// responses, 13 MB. The index calls back after it stores, so either its
// event or this ends the entry.
func (o *overlay) caughtUpCopy(key types.NamespacedName, cached *copyRecord) {
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.findCopy(key)
	if !ok {
		return
	}
	deleted := w.result == nil
	if deleted && cached == nil || !deleted && cached != nil && cached.uid == w.uid && cached.resourceVersion != w.basedOn {
		o.dropCopy(key)
	}
}

// serviceAccount returns our last write of a ServiceAccount while the cache
// still shows the version that write replaced: the cached object (never
// modified) with the write's changes laid over it.
func (o *overlay) serviceAccount(cached *corev1.ServiceAccount) *corev1.ServiceAccount {
	key := types.NamespacedName{Namespace: cached.Namespace, Name: cached.Name}
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.sas[key]
	if !ok {
		return cached
	}
	if cached.ResourceVersion != w.basedOn || cached.UID != w.uid || o.now().Sub(w.at) > overlayTTL || saRest(cached) != w.rest {
		delete(o.sas, key)
		return cached
	}
	sa := *cached
	sa.ResourceVersion = w.resourceVersion
	sa.ImagePullSecrets = make([]corev1.LocalObjectReference, len(w.pullSecrets))
	for i, n := range w.pullSecrets {
		sa.ImagePullSecrets[i].Name = n
	}
	sa.Annotations = maps.Clone(cached.Annotations)
	for k, v := range map[string]*string{v1alpha1.AttachedAnnotation: w.record, v1alpha1.AttachedProofAnnotation: w.proof} {
		switch {
		case v != nil && sa.Annotations == nil:
			sa.Annotations = map[string]string{k: *v}
		case v != nil:
			sa.Annotations[k] = *v
		default:
			delete(sa.Annotations, k)
		}
	}
	return &sa
}

// observedServiceAccount drops our last write of a ServiceAccount once the
// informer shows a version other than the one the write replaced (ours or
// a later one; resourceVersion "" for a deletion), or another object of the
// name: from then on the cache knows as much as we do, and keeping the
// write until serviceAccount next reads it, or the TTL, held every write of
// a cold start for minutes.
func (o *overlay) observedServiceAccount(key types.NamespacedName, uid types.UID, resourceVersion string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.sas[key]; ok && (w.uid != uid || w.basedOn != resourceVersion) {
		delete(o.sas, key)
	}
}

func (o *overlay) wroteServiceAccount(basedOn string, result *corev1.ServiceAccount) {
	w := saWrite{
		at: o.now(), basedOn: basedOn, uid: result.UID, resourceVersion: result.ResourceVersion,
		record: annotation(result.Annotations, v1alpha1.AttachedAnnotation), proof: annotation(result.Annotations, v1alpha1.AttachedProofAnnotation),
		rest: saRest(result),
	}
	for _, r := range result.ImagePullSecrets {
		w.pullSecrets = append(w.pullSecrets, r.Name)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sas[types.NamespacedName{Namespace: result.Namespace, Name: result.Name}] = w
}

// sweep drops expired entries; called now and then so that writes whose
// objects vanished unobserved do not stay.
func (o *overlay) sweep() {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	for ns := range o.copies {
		o.dropCopies(ns, func(w copyWrite) bool { return now.Sub(w.at) > overlayTTL })
	}
	for k, w := range o.sas {
		if now.Sub(w.at) > overlayTTL {
			delete(o.sas, k)
		}
	}
}

// Conflict retries back off from conflictRetryFirst to conflictRetryLongest: a
// Secret that is not ours cannot be watched (only copies are cached), so
// the only way to see it go is to try again.
const (
	conflictRetryFirst   = 10 * time.Second
	conflictRetryLongest = 5 * time.Minute
)

// conflicts remembers names a create found taken by a Secret that is not a
// copy, per namespace, until the next retry.
type conflicts struct {
	mu  sync.Mutex
	now func() time.Time
	by  map[string]map[string]conflict
}

type conflict struct {
	note    string
	until   time.Time
	backoff time.Duration
}

func newConflicts(now func() time.Time) *conflicts {
	return &conflicts{now: now, by: map[string]map[string]conflict{}}
}

// learn records that name is taken in ns and returns when to retry.
func (c *conflicts) learn(ns, name, note string) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.by[ns]
	if m == nil {
		m = map[string]conflict{}
		c.by[ns] = m
	}
	backoff := conflictRetryFirst
	if old, ok := m[name]; ok {
		backoff = min(2*old.backoff, conflictRetryLongest)
	}
	m[name] = conflict{note: note, until: c.now().Add(backoff), backoff: backoff}
	return backoff
}

// blocked returns the names known taken in ns, and how long until the
// earliest retry; expired entries are kept (for their backoff) but not
// returned, so that the next plan tries the create again.
func (c *conflicts) blocked(ns string) (map[string]string, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out map[string]string
	var next time.Duration
	for name, k := range c.by[ns] {
		if now.Sub(k.until) > conflictRetryLongest {
			delete(c.by[ns], name) // long resolved: forget the backoff too
			continue
		}
		if !now.Before(k.until) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = k.note
		if d := k.until.Sub(now); next == 0 || d < next {
			next = d
		}
	}
	if len(c.by[ns]) == 0 {
		delete(c.by, ns)
	}
	return out, next
}

// forget drops a namespace (deleted) or one name (created after all).
func (c *conflicts) forget(ns, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if name == "" {
		delete(c.by, ns)
		return
	}
	delete(c.by[ns], name)
	if len(c.by[ns]) == 0 {
		delete(c.by, ns)
	}
}

// createdIn lists copies we created in ns that the cache may not show yet.
func (o *overlay) createdIn(ns string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, w := range o.copies[ns] {
		if w.basedOn == "" && w.result != nil {
			out = append(out, w.name)
		}
	}
	return out
}

// reattachments remembers when the controller put a name back on a
// ServiceAccount after someone else removed it, for contest.Policy: the
// history of a fight. Entries end after the policy's memory. Losing them
// (a restart) costs at most the two free repairs again.
type reattachments struct {
	mu     sync.Mutex
	now    func() time.Time
	memory time.Duration
	by     map[types.NamespacedName]map[string][]time.Time
}

func newReattachments(now func() time.Time, memory time.Duration) *reattachments {
	return &reattachments{now: now, memory: memory, by: map[types.NamespacedName]map[string][]time.Time{}}
}

// add records a re-attachment of secret to the ServiceAccount sa.
func (r *reattachments) add(sa types.NamespacedName, secret string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.by[sa]
	if m == nil {
		m = map[string][]time.Time{}
		r.by[sa] = m
	}
	m[secret] = append(m[secret], r.now())
}

// of returns a ServiceAccount's history (a copy), or nil.
func (r *reattachments) of(sa types.NamespacedName) map[string][]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.by[sa]
	if m == nil {
		return nil
	}
	out := make(map[string][]time.Time, len(m))
	for k, v := range m {
		out[k] = append([]time.Time(nil), v...)
	}
	return out
}

// sweep forgets what the policy no longer counts.
func (r *reattachments) sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for sa, m := range r.by {
		for secret, times := range m {
			keep := times[:0]
			for _, t := range times {
				if now.Sub(t) < r.memory {
					keep = append(keep, t)
				}
			}
			if len(keep) == 0 {
				delete(m, secret)
			} else {
				m[secret] = keep
			}
		}
		if len(m) == 0 {
			delete(r.by, sa)
		}
	}
}
