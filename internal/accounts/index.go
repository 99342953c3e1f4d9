package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ErrNotSynced is returned by reads before the first list is in.
var ErrNotSynced = errors.New("the ServiceAccounts are not listed yet")

// Index holds an Account of every ServiceAccount, by namespace.
type Index struct {
	mu sync.RWMutex
	// byNamespace holds each namespace's Accounts sorted by name: a
	// namespace usually has a few, and a slice of them costs less than a
	// map.
	byNamespace map[string][]*Account
	intern      Intern
	onChange    func(namespace string)
	synced      atomic.Bool
	syncedCh    chan struct{}
}

// New returns an empty index. intern (nil: none) shares strings many
// ServiceAccounts hold; onChange (nil: none) is called, once the index is
// synced, with the namespace of any ServiceAccount that appears, changes or
// goes.
func New(intern Intern, onChange func(namespace string)) *Index {
	if intern == nil {
		intern = same
	}
	return &Index{byNamespace: map[string][]*Account{}, intern: intern, onChange: onChange, syncedCh: make(chan struct{})}
}

// Start runs the index's reflector until ctx ends.
func (ix *Index) Start(ctx context.Context, c kubernetes.Interface) {
	lw := cache.NewListWatchFromClient(c.CoreV1().RESTClient(), "serviceaccounts", metav1.NamespaceAll, fields.Everything())
	r := cache.NewReflectorWithOptions(lw, &corev1.ServiceAccount{}, &store{ix: ix}, cache.ReflectorOptions{Name: "accounts"})
	go r.RunWithContext(ctx)
}

// Synced reports whether the ServiceAccounts were listed once.
func (ix *Index) Synced() bool { return ix.synced.Load() }

// WaitForSync blocks until the index is synced or ctx ends.
func (ix *Index) WaitForSync(ctx context.Context) error {
	select {
	case <-ix.syncedCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the ServiceAccounts to be listed: %w", ctx.Err())
	}
}

// InNamespace returns the namespace's ServiceAccounts as kept (Object).
func (ix *Index) InNamespace(namespace string) ([]*corev1.ServiceAccount, error) {
	if !ix.Synced() {
		return nil, ErrNotSynced
	}
	ix.mu.RLock()
	accounts := ix.byNamespace[namespace]
	out := make([]*corev1.ServiceAccount, 0, len(accounts))
	for _, a := range accounts {
		out = append(out, a.Object())
	}
	ix.mu.RUnlock()
	return out, nil
}

// Get returns one ServiceAccount as kept (Object), or a NotFound error.
func (ix *Index) Get(namespace, name string) (*corev1.ServiceAccount, error) {
	if !ix.Synced() {
		return nil, ErrNotSynced
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	accounts := ix.byNamespace[namespace]
	if i, ok := find(accounts, name); ok {
		return accounts[i].Object(), nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("serviceaccounts"), name)
}

// Each calls fn with every Account, namespace by namespace, until fn
// returns false. fn must not keep the Account nor change it, and must not
// read the index.
func (ix *Index) Each(fn func(*Account) bool) error {
	if !ix.Synced() {
		return ErrNotSynced
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, accounts := range ix.byNamespace {
		for _, a := range accounts {
			if !fn(a) {
				return nil
			}
		}
	}
	return nil
}

// Len returns how many ServiceAccounts are held.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	n := 0
	for _, accounts := range ix.byNamespace {
		n += len(accounts)
	}
	return n
}

func find(accounts []*Account, name string) (int, bool) {
	return slices.BinarySearchFunc(accounts, name, func(a *Account, name string) int { return strings.Compare(a.Name, name) })
}

// set stores (a not nil) or removes the Account of namespace/name, and
// reports a change.
func (ix *Index) set(namespace, name string, a *Account) {
	ix.mu.Lock()
	accounts := ix.byNamespace[namespace]
	i, found := find(accounts, name)
	switch {
	case found && a != nil && accounts[i].equal(a):
		ix.mu.Unlock()
		return
	case found && a != nil:
		a.Namespace = accounts[i].Namespace // one string per namespace
		accounts[i] = a
	case found:
		accounts = slices.Delete(accounts, i, i+1)
	case a != nil:
		if len(accounts) > 0 {
			a.Namespace = accounts[0].Namespace
		}
		accounts = slices.Insert(accounts, i, a)
	default:
		ix.mu.Unlock()
		return
	}
	if len(accounts) == 0 {
		delete(ix.byNamespace, namespace)
	} else {
		ix.byNamespace[namespace] = accounts
	}
	ix.mu.Unlock()
	if ix.onChange != nil && ix.Synced() {
		ix.onChange(namespace)
	}
}

// replace stores a full list: the Accounts of ServiceAccounts not in it
// go, and the namespaces whose Accounts changed are reported.
func (ix *Index) replace(list []*Account) {
	next := map[string][]*Account{}
	for _, a := range list {
		next[a.Namespace] = append(next[a.Namespace], a)
	}
	for ns, accounts := range next {
		slices.SortFunc(accounts, func(a, b *Account) int { return strings.Compare(a.Name, b.Name) })
		for _, a := range accounts {
			a.Namespace = ns
		}
		next[ns] = slices.Clip(accounts)
	}
	ix.mu.Lock()
	var changed []string
	for ns, accounts := range next {
		if !slices.EqualFunc(ix.byNamespace[ns], accounts, (*Account).equal) {
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
		return // nothing was reported before: whoever waited plans everything
	}
	if ix.onChange != nil {
		slices.Sort(changed)
		for _, ns := range changed {
			ix.onChange(ns)
		}
	}
}

// store receives the reflector's objects and keeps their Accounts. The
// reflector hands it ServiceAccounts (watch events) or, through
// Transformer, Accounts (the initial list).
type store struct{ ix *Index }

var _ cache.TransformingStore = &store{}

// transform turns a ServiceAccount into its Account; an Account passes
// through.
func (s *store) transform(obj any) (any, error) {
	switch o := obj.(type) {
	case *Account:
		return o, nil
	case *corev1.ServiceAccount:
		return FromObject(o, s.ix.intern), nil
	case cache.DeletedFinalStateUnknown:
		return s.transform(o.Obj)
	}
	return nil, fmt.Errorf("accounts: unexpected object %T", obj)
}

// Transformer lets the reflector shrink objects as it lists them.
func (s *store) Transformer() cache.TransformFunc { return s.transform }

func (s *store) put(obj any, gone bool) error {
	t, err := s.transform(obj)
	if err != nil {
		return err
	}
	a := t.(*Account)
	if gone {
		s.ix.set(a.Namespace, a.Name, nil)
		return nil
	}
	s.ix.set(a.Namespace, a.Name, a)
	return nil
}

func (s *store) Add(obj any) error    { return s.put(obj, false) }
func (s *store) Update(obj any) error { return s.put(obj, false) }
func (s *store) Delete(obj any) error { return s.put(obj, true) }

func (s *store) Replace(list []any, _ string) error {
	accounts := make([]*Account, 0, len(list))
	for _, obj := range list {
		t, err := s.transform(obj)
		if err != nil {
			return err
		}
		accounts = append(accounts, t.(*Account))
	}
	s.ix.replace(accounts)
	return nil
}

// Resync does nothing: the Accounts are the state.
func (s *store) Resync() error { return nil }
