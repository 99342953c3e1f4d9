package fleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// seen is an object as the tracker's watch last delivered it, and when.
type seen[T any] struct {
	obj T
	at  time.Time
}

// tracker watches, as administrator, every ServiceAccount and every Secret
// labelled as a copy, and tells when a goal is met and when the last change
// that met it arrived. A watch rather than a LIST poll: its timestamps are
// as precise as the delivery of an event (milliseconds), and it does not
// load the API server with a cluster-wide LIST every few hundred
// milliseconds while the controller is being measured. Watch delivery
// delays the floor's end and the controller's end alike.
type tracker struct {
	mu      sync.Mutex
	sas     map[string]map[string]seen[*corev1.ServiceAccount] // namespace, name
	copies  map[string]map[string]seen[*corev1.Secret]
	deleted time.Time // latest deletion of a copy
	changed chan struct{}

	factories []informers.SharedInformerFactory
	stop      chan struct{}
}

func startTracker(ctx context.Context, client kubernetes.Interface) (*tracker, error) {
	t := &tracker{
		sas:     map[string]map[string]seen[*corev1.ServiceAccount]{},
		copies:  map[string]map[string]seen[*corev1.Secret]{},
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	all := informers.NewSharedInformerFactory(client, 0)
	labelled := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = v1alpha1.ManagedByLabel + "=" + v1alpha1.ManagedByValue
	}))
	t.factories = []informers.SharedInformerFactory{all, labelled}
	if _, err := all.Core().V1().ServiceAccounts().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.setSA(obj, false) },
		UpdateFunc: func(_, obj any) { t.setSA(obj, false) },
		DeleteFunc: func(obj any) { t.setSA(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("watch ServiceAccounts: %w", err)
	}
	if _, err := labelled.Core().V1().Secrets().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.setCopy(obj, false) },
		UpdateFunc: func(_, obj any) { t.setCopy(obj, false) },
		DeleteFunc: func(obj any) { t.setCopy(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("watch Secret copies: %w", err)
	}
	for _, f := range t.factories {
		f.Start(t.stop)
	}
	for _, f := range t.factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				t.Stop()
				return nil, fmt.Errorf("sync the watch of %v: %w", typ, context.Cause(ctx))
			}
		}
	}
	return t, nil
}

// Stop ends the watches and waits for them.
func (t *tracker) Stop() {
	close(t.stop)
	for _, f := range t.factories {
		f.Shutdown()
	}
}

func unwrap(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

func (t *tracker) setSA(obj any, deleted bool) {
	sa, ok := unwrap(obj).(*corev1.ServiceAccount)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	record(t.sas, sa, deleted, now)
	t.notifyLocked()
}

func (t *tracker) setCopy(obj any, deleted bool) {
	s, ok := unwrap(obj).(*corev1.Secret)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	record(t.copies, s, deleted, now)
	if deleted {
		t.deleted = now
	}
	t.notifyLocked()
}

// record keeps obj, as seen at at, under its namespace and name, or forgets
// it when deleted.
func record[T metav1.Object](m map[string]map[string]seen[T], obj T, deleted bool, at time.Time) {
	ns, name := obj.GetNamespace(), obj.GetName()
	if deleted {
		delete(m[ns], name)
		return
	}
	if m[ns] == nil {
		m[ns] = map[string]seen[T]{}
	}
	m[ns][name] = seen[T]{obj: obj, at: at}
}

func (t *tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// goal is a condition over the tracked objects. It returns whether it
// holds and, if so, when the latest change it depends on arrived.
type goal func(t *tracker) (bool, time.Time)

// wait waits until the goal holds and returns when the change that made it
// hold arrived.
func (t *tracker) wait(ctx context.Context, what string, timeout time.Duration, g goal) (time.Time, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("%s: not reached within %v", what, timeout))
	defer cancel()
	for {
		t.mu.Lock()
		ok, at := g(t)
		changed := t.changed
		t.mu.Unlock()
		if ok {
			return at, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for %s: %w", what, context.Cause(ctx))
		}
		// Checks cost a pass over every object: at most fifty a second.
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait for %s: %w", what, context.Cause(ctx))
		}
	}
}

// serviceAccounts returns a copy of the tracked ServiceAccounts of the
// namespaces.
func (t *tracker) serviceAccounts(namespaces []string) []*corev1.ServiceAccount {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*corev1.ServiceAccount
	for _, ns := range namespaces {
		for _, name := range slices.Sorted(maps.Keys(t.sas[ns])) {
			out = append(out, t.sas[ns][name].obj.DeepCopy())
		}
	}
	return out
}

// hasCopy reports whether the namespace has a copy called name.
func (t *tracker) hasCopy(ns, name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.copies[ns][name]
	return ok
}

// allServiceAccounts holds when every namespace has at least perNS
// ServiceAccounts and every one of them satisfies pred.
func allServiceAccounts(namespaces []string, perNS int, pred func(*corev1.ServiceAccount) bool) goal {
	return func(t *tracker) (bool, time.Time) {
		var last time.Time
		for _, ns := range namespaces {
			sas := t.sas[ns]
			if len(sas) < perNS {
				return false, last
			}
			for _, s := range sas {
				if !pred(s.obj) {
					return false, last
				}
				last = latest(last, s.at)
			}
		}
		return true, last
	}
}

// allCopies holds when every namespace has a copy called name satisfying
// pred, and no copy called any of gone.
func allCopies(namespaces []string, name string, pred func(*corev1.Secret) bool, gone ...string) goal {
	return func(t *tracker) (bool, time.Time) {
		last := time.Time{}
		if len(gone) > 0 {
			last = t.deleted
		}
		for _, ns := range namespaces {
			c, ok := t.copies[ns][name]
			if !ok || !pred(c.obj) {
				return false, last
			}
			for _, g := range gone {
				if _, ok := t.copies[ns][g]; ok {
					return false, last
				}
			}
			last = latest(last, c.at)
		}
		return true, last
	}
}

// noCopies holds when no namespace has a copy called name.
func noCopies(namespaces []string, name string) goal {
	return func(t *tracker) (bool, time.Time) {
		for _, ns := range namespaces {
			if _, ok := t.copies[ns][name]; ok {
				return false, t.deleted
			}
		}
		return true, t.deleted
	}
}

// both holds when every goal holds, as of the latest of their changes.
func both(goals ...goal) goal {
	return func(t *tracker) (bool, time.Time) {
		var last time.Time
		for _, g := range goals {
			ok, at := g(t)
			if !ok {
				return false, last
			}
			last = latest(last, at)
		}
		return true, last
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// carries reports whether the ServiceAccount lists the secret.
func carries(name string) func(*corev1.ServiceAccount) bool {
	return func(sa *corev1.ServiceAccount) bool { return serviceaccount.Has(sa, name) }
}

// carriesOnly reports whether the ServiceAccount lists the secret and
// nothing else.
func carriesOnly(name string) func(*corev1.ServiceAccount) bool {
	return func(sa *corev1.ServiceAccount) bool {
		return len(sa.ImagePullSecrets) == 1 && sa.ImagePullSecrets[0].Name == name
	}
}

func carriesNone(sa *corev1.ServiceAccount) bool { return len(sa.ImagePullSecrets) == 0 }
