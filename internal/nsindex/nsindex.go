// Package nsindex keeps a record of every object of one namespaced kind, by
// namespace, fed by a client-go reflector. The reflector's store turns each
// object into its record as it arrives (the initial list included, through
// cache.TransformingStore), so the objects themselves are garbage at once:
// a controller keeps the few fields it reads instead of whole objects in an
// informer's cache, and a namespace's records in a slice instead of a map
// with its keys.
//
// The controller keeps its ServiceAccounts (package accounts) and its
// copies this way.
package nsindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// ErrNotSynced is returned by reads before the first list is in.
var ErrNotSynced = errors.New("not listed yet")

// Record is what is kept of one object.
type Record[R any] interface {
	comparable
	// Key is the object's namespace and name.
	Key() (namespace, name string)
	// SameVersion reports whether two records stand for the same version
	// of the object (nothing to report).
	SameVersion(R) bool
	// ShareNamespace makes the record hold this copy of its namespace's
	// name, which the namespace's other records hold too.
	ShareNamespace(string)
}

// Index holds a record of every object, by namespace.
type Index[R Record[R]] struct {
	mu sync.RWMutex
	// byNamespace holds each namespace's records sorted by name.
	byNamespace map[string][]R
	convert     func(obj any) (R, error)
	onChange    func(namespace string, old, new R)
	synced      atomic.Bool
	syncedCh    chan struct{}
}

// New returns an empty index. convert turns an object the reflector hands
// over into its record. onChange (nil: none) is called, once the index is
// synced, for every object that appears, changes or goes, with its record
// before and after (the zero record: none); after a relist, once for each
// namespace whose records changed, with two zero records.
func New[R Record[R]](convert func(obj any) (R, error), onChange func(namespace string, old, new R)) *Index[R] {
	return &Index[R]{byNamespace: map[string][]R{}, convert: convert, onChange: onChange, syncedCh: make(chan struct{})}
}

// Run runs a reflector over lw, with example the kind's object, until ctx
// ends.
func (ix *Index[R]) Run(ctx context.Context, name string, lw cache.ListerWatcher, example runtime.Object) {
	r := cache.NewReflectorWithOptions(lw, example, &store[R]{ix: ix}, cache.ReflectorOptions{Name: name})
	r.RunWithContext(ctx)
}

// Synced reports whether the objects were listed once.
func (ix *Index[R]) Synced() bool { return ix.synced.Load() }

// WaitForSync blocks until the index is synced or ctx ends.
func (ix *Index[R]) WaitForSync(ctx context.Context) error {
	select {
	case <-ix.syncedCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the first list: %w", ctx.Err())
	}
}

// InNamespace calls fn with the namespace's records, in name order.
func (ix *Index[R]) InNamespace(namespace string, fn func(R)) error {
	if !ix.Synced() {
		return ErrNotSynced
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, r := range ix.byNamespace[namespace] {
		fn(r)
	}
	return nil
}

// Get returns one record, and whether there is one.
func (ix *Index[R]) Get(namespace, name string) (R, bool, error) {
	var zero R
	if !ix.Synced() {
		return zero, false, ErrNotSynced
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	records := ix.byNamespace[namespace]
	if i, ok := find(records, name); ok {
		return records[i], true, nil
	}
	return zero, false, nil
}

// Each calls fn with every record, namespace by namespace, until fn
// returns false. fn must not change the record nor read the index.
func (ix *Index[R]) Each(fn func(R) bool) error {
	if !ix.Synced() {
		return ErrNotSynced
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, records := range ix.byNamespace {
		for _, r := range records {
			if !fn(r) {
				return nil
			}
		}
	}
	return nil
}

func name[R Record[R]](r R) string {
	_, n := r.Key()
	return n
}

func find[R Record[R]](records []R, n string) (int, bool) {
	return slices.BinarySearchFunc(records, n, func(r R, n string) int { return strings.Compare(name(r), n) })
}

// set stores (r not zero) or removes the record of namespace/n, and
// reports a change.
func (ix *Index[R]) set(namespace, n string, r R) {
	var zero, old R
	ix.mu.Lock()
	records := ix.byNamespace[namespace]
	i, found := find(records, n)
	if found {
		old = records[i]
	}
	switch {
	case found && r != zero && old.SameVersion(r):
		ix.mu.Unlock()
		return
	case found && r != zero:
		r.ShareNamespace(namespaceOf(old))
		records[i] = r
	case found:
		records = slices.Delete(records, i, i+1)
	case r != zero:
		if len(records) > 0 {
			r.ShareNamespace(namespaceOf(records[0]))
		}
		records = slices.Insert(records, i, r)
	default:
		ix.mu.Unlock()
		return
	}
	if len(records) == 0 {
		delete(ix.byNamespace, namespace)
	} else {
		ix.byNamespace[namespace] = records
	}
	ix.mu.Unlock()
	if ix.onChange != nil && ix.Synced() {
		ix.onChange(namespace, old, r)
	}
}

func namespaceOf[R Record[R]](r R) string {
	ns, _ := r.Key()
	return ns
}

// replace stores a full list: the records of objects not in it go, and
// the namespaces whose records changed are reported.
func (ix *Index[R]) replace(list []R) {
	next := map[string][]R{}
	for _, r := range list {
		ns := namespaceOf(r)
		next[ns] = append(next[ns], r)
	}
	for ns, records := range next {
		slices.SortFunc(records, func(a, b R) int { return strings.Compare(name(a), name(b)) })
		for _, r := range records {
			r.ShareNamespace(ns)
		}
		next[ns] = slices.Clip(records)
	}
	same := func(a, b R) bool { return a.SameVersion(b) }
	ix.mu.Lock()
	var changed []string
	for ns, records := range next {
		if !slices.EqualFunc(ix.byNamespace[ns], records, same) {
			changed = append(changed, ns)
		}
	}
	for ns := range ix.byNamespace {
		if _, ok := next[ns]; !ok {
			changed = append(changed, ns)
		}
	}
	ix.byNamespace = next
	ix.mu.Unlock()
	if ix.synced.CompareAndSwap(false, true) {
		close(ix.syncedCh)
		return // nothing was reported before: whoever waited reads everything
	}
	if ix.onChange != nil {
		var zero R
		slices.Sort(changed)
		for _, ns := range changed {
			ix.onChange(ns, zero, zero)
		}
	}
}

// store receives the reflector's objects and keeps their records. The
// reflector hands it objects (watch events) or, through Transformer,
// records (the initial list).
type store[R Record[R]] struct{ ix *Index[R] }

// transform turns an object into its record; a record passes through.
func (s *store[R]) transform(obj any) (any, error) {
	switch o := obj.(type) {
	case R:
		return o, nil
	case cache.DeletedFinalStateUnknown:
		return s.transform(o.Obj)
	}
	r, err := s.ix.convert(obj)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Transformer lets the reflector shrink objects as it lists them.
func (s *store[R]) Transformer() cache.TransformFunc { return s.transform }

func (s *store[R]) put(obj any, gone bool) error {
	t, err := s.transform(obj)
	if err != nil {
		return err
	}
	r := t.(R)
	ns, n := r.Key()
	if gone {
		var zero R
		r = zero
	}
	s.ix.set(ns, n, r)
	return nil
}

func (s *store[R]) Add(obj any) error    { return s.put(obj, false) }
func (s *store[R]) Update(obj any) error { return s.put(obj, false) }
func (s *store[R]) Delete(obj any) error { return s.put(obj, true) }

func (s *store[R]) Replace(list []any, _ string) error {
	records := make([]R, 0, len(list))
	for _, obj := range list {
		t, err := s.transform(obj)
		if err != nil {
			return err
		}
		records = append(records, t.(R))
	}
	s.ix.replace(records)
	return nil
}

// Resync does nothing: the records are the state.
func (s *store[R]) Resync() error { return nil }
