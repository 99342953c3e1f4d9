package usage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// Index holds the records of Pods and workloads, by namespace. It is fed
// by one client-go reflector per kind, each writing into a store that keeps
// records instead of objects.
type Index struct {
	mu       sync.RWMutex
	pods     map[unique.Handle[string]]table
	work     map[unique.Handle[string]]table
	onChange func(namespace string)
	onSynced func()
	kinds    []*kindStore
	// synced is set once every kind has been listed; changes are reported
	// only from then on (onSynced stands for all those before).
	synced atomic.Bool
}

// New returns an empty index. Once every kind is listed it calls onSynced;
// from then on onChange, with the namespace of any record that appears,
// changes or goes. Either may be nil.
func New(onChange func(namespace string), onSynced func()) *Index {
	return &Index{
		pods:     map[unique.Handle[string]]table{},
		work:     map[unique.Handle[string]]table{},
		onChange: onChange,
		onSynced: onSynced,
	}
}

// Pods returns the namespace's Pods that read a Secret or are stuck.
func (ix *Index) Pods(namespace string) []planner.Pod {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	m := ix.pods[unique.Make(namespace)]
	out := make([]planner.Pod, 0, len(m))
	for _, r := range m {
		out = append(out, r.pod())
	}
	return out
}

// Workloads returns the namespace's templates that can still make Pods and
// read a Secret or own Pods.
func (ix *Index) Workloads(namespace string) []planner.Workload {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	m := ix.work[unique.Make(namespace)]
	out := make([]planner.Workload, 0, len(m))
	for _, r := range m {
		out = append(out, r.workload())
	}
	return out
}

// Counts returns how many Pod and workload records are held, for metrics
// and benchmarks.
func (ix *Index) Counts() (pods, workloads int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for _, m := range ix.pods {
		pods += len(m)
	}
	for _, m := range ix.work {
		workloads += len(m)
	}
	return pods, workloads
}

// table holds one namespace's records of Pods, or of workloads, sorted by
// kind and name: a namespace has a few, and a slice of pointers costs less
// than a map and its keys (about 50 bytes a record).
type table []*record

// key is what a table is sorted by: a workload's kind ("" for a Pod) and
// name.
type key struct{ kind, name string }

func (r *record) key() key {
	if r.kind == (unique.Handle[groupKind]{}) {
		return key{name: r.name}
	}
	return key{r.kind.Value().kind, r.name}
}

func compareKeys(a, b key) int {
	if c := strings.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

func (t table) find(k key) (int, bool) {
	return slices.BinarySearchFunc(t, k, func(r *record, k key) int { return compareKeys(r.key(), k) })
}

// set stores or removes one record and reports a change.
func (ix *Index) set(tables map[unique.Handle[string]]table, ns unique.Handle[string], k key, r *record) {
	ix.mu.Lock()
	t := tables[ns]
	i, found := t.find(k)
	var old *record
	if found {
		old = t[i]
	}
	if old.equal(r) {
		ix.mu.Unlock()
		return
	}
	switch {
	case r == nil:
		t = slices.Delete(t, i, i+1)
	case found:
		t[i] = r
	default:
		t = slices.Insert(t, i, r)
	}
	if len(t) == 0 {
		delete(tables, ns)
	} else {
		tables[ns] = t
	}
	ix.mu.Unlock()
	if ix.onChange != nil && ix.synced.Load() {
		ix.onChange(ns.Value())
	}
}

// kind is one resource the index follows.
type kind struct {
	name    string
	example runtime.Object
	// client is the REST client of the resource's API group.
	client func(kubernetes.Interface) cache.Getter
	// convert returns the record, or nil when the object cannot matter.
	convert func(obj any) *record
	pods    bool
}

func kinds() []kind {
	core := func(c kubernetes.Interface) cache.Getter { return c.CoreV1().RESTClient() }
	apps := func(c kubernetes.Interface) cache.Getter { return c.AppsV1().RESTClient() }
	batch := func(c kubernetes.Interface) cache.Getter { return c.BatchV1().RESTClient() }
	pod := func(obj any) *record {
		if p, ok := obj.(*corev1.Pod); ok {
			return podRecord(p)
		}
		return nil
	}
	return []kind{
		{name: "pods", example: &corev1.Pod{}, client: core, convert: pod, pods: true},
		{name: "deployments", example: &appsv1.Deployment{}, client: apps, convert: workloadRecord},
		{name: "replicasets", example: &appsv1.ReplicaSet{}, client: apps, convert: workloadRecord},
		{name: "statefulsets", example: &appsv1.StatefulSet{}, client: apps, convert: workloadRecord},
		{name: "daemonsets", example: &appsv1.DaemonSet{}, client: apps, convert: workloadRecord},
		{name: "jobs", example: &batchv1.Job{}, client: batch, convert: workloadRecord},
		{name: "cronjobs", example: &batchv1.CronJob{}, client: batch, convert: workloadRecord},
		{name: "replicationcontrollers", example: &corev1.ReplicationController{}, client: core, convert: workloadRecord},
	}
}

// kindStore receives one kind's objects from its reflector and keeps their
// records in the index. The reflector hands it objects (watch events) or,
// through Transformer, records (the initial list).
type kindStore struct {
	ix     *Index
	kind   kind
	mu     sync.Mutex
	synced bool
}

var _ cache.TransformingStore = &kindStore{}

func (s *kindStore) table() map[unique.Handle[string]]table {
	if s.kind.pods {
		return s.ix.pods
	}
	return s.ix.work
}

// transform turns an object into its record; a record passes through, and
// an object that cannot matter becomes a record holding only its name, so
// that it can still be keyed and removed.
func (s *kindStore) transform(obj any) (any, error) {
	if r, ok := obj.(*record); ok {
		return r, nil
	}
	if r := s.kind.convert(obj); r != nil {
		return r, nil
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("usage index %s: unexpected object %T", s.kind.name, obj)
	}
	return &record{namespace: unique.Make(m.GetNamespace()), name: m.GetName(), budget: tombstone}, nil
}

// tombstone marks a record that stands for an object that cannot matter.
const tombstone = -2

// Transformer lets the reflector shrink objects as it lists them.
func (s *kindStore) Transformer() cache.TransformFunc { return s.transform }

// key is the key in its namespace's table of this kind's object name.
func (s *kindStore) key(name string) key {
	if s.kind.pods {
		return key{name: name}
	}
	return key{kindOf(s.kind.name), name}
}

func kindOf(resource string) string {
	return map[string]string{
		"deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet",
		"jobs": "Job", "cronjobs": "CronJob", "replicationcontrollers": "ReplicationController",
	}[resource]
}

func (s *kindStore) put(obj any) error {
	t, err := s.transform(obj)
	if err != nil {
		return err
	}
	r := t.(*record)
	if r.budget == tombstone {
		r = nil
	}
	s.ix.set(s.table(), t.(*record).namespace, s.key(t.(*record).name), r)
	return nil
}

// Add stores an object's record.
func (s *kindStore) Add(obj any) error { return s.put(obj) }

// Update stores an object's new record.
func (s *kindStore) Update(obj any) error { return s.put(obj) }

// Delete removes an object's record.
func (s *kindStore) Delete(obj any) error {
	t, err := s.transform(obj)
	if err != nil {
		return err
	}
	s.ix.set(s.table(), t.(*record).namespace, s.key(t.(*record).name), nil)
	return nil
}

// Replace stores a full list, dropping the records of objects not in it.
func (s *kindStore) Replace(list []any, _ string) error {
	type id struct {
		ns  unique.Handle[string]
		key key
	}
	seen := map[id]bool{}
	for _, obj := range list {
		t, err := s.transform(obj)
		if err != nil {
			return err
		}
		r := t.(*record)
		seen[id{r.namespace, s.key(r.name)}] = true
		if err := s.put(r); err != nil {
			return err
		}
	}
	kind := s.key("").kind
	var gone []id
	s.ix.mu.RLock()
	for ns, t := range s.table() {
		for _, r := range t {
			if k := r.key(); k.kind == kind && !seen[id{ns, k}] {
				gone = append(gone, id{ns, k})
			}
		}
	}
	s.ix.mu.RUnlock()
	for _, g := range gone {
		s.ix.set(s.table(), g.ns, g.key, nil)
	}
	s.mu.Lock()
	s.synced = true
	s.mu.Unlock()
	s.ix.checkSynced()
	return nil
}

// checkSynced marks the index synced, and says so once, when every kind
// has been listed.
func (ix *Index) checkSynced() {
	if ix.synced.Load() || !ix.allListed() {
		return
	}
	// The last two kinds may finish listing together: only one says so.
	if ix.synced.CompareAndSwap(false, true) && ix.onSynced != nil {
		ix.onSynced()
	}
}

// Resync does nothing: the records are the state.
func (s *kindStore) Resync() error { return nil }

func (s *kindStore) hasSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.synced
}

// Start runs one reflector per kind until ctx ends.
func (ix *Index) Start(ctx context.Context, c kubernetes.Interface) {
	// Register every store before any reflector runs, so that the index
	// is synced only once all of them have listed.
	var stores []*kindStore
	for _, k := range kinds() {
		stores = append(stores, &kindStore{ix: ix, kind: k})
	}
	ix.mu.Lock()
	ix.kinds = stores
	ix.mu.Unlock()
	for _, s := range stores {
		k := s.kind
		lw := cache.NewListWatchFromClient(k.client(c), k.name, metav1.NamespaceAll, fields.Everything())
		r := cache.NewReflectorWithOptions(lw, k.example, s, cache.ReflectorOptions{Name: "usage-" + k.name})
		go r.RunWithContext(ctx)
	}
}

// Synced reports whether every kind has been listed once.
func (ix *Index) Synced() bool { return ix.synced.Load() }

func (ix *Index) allListed() bool {
	ix.mu.RLock()
	kinds := slices.Clone(ix.kinds)
	ix.mu.RUnlock()
	if len(kinds) == 0 {
		return false // Start registers every kind at once
	}
	for _, s := range kinds {
		if !s.hasSynced() {
			return false
		}
	}
	return true
}
