package controller

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/contest"
	"github.com/pullsecrets/pullsecrets/internal/controller/podrestart"
	"github.com/pullsecrets/pullsecrets/internal/credprovider"
	"github.com/pullsecrets/pullsecrets/internal/usage"
)

// Options configure the controller.
type Options struct {
	// SourceNamespaces are the only namespaces source Secrets may live in,
	// and the only ones whose Secret data the controller reads.
	SourceNamespaces []string
	// KeyNamespace holds the ownership key Secret (the controller's own
	// namespace).
	KeyNamespace string
	// Workers is the number of namespaces reconciled in parallel.
	Workers int
	// StatusInterval is the least time between two status computations
	// (each reads every namespace) and writes of one ClusterPullSecret.
	StatusInterval time.Duration
	// PodRestartsPerSecond bounds Pod deletions for restartPods.
	PodRestartsPerSecond float64
	// Metrics receives the controller's series; required.
	Metrics *Metrics
	// VerifyRootCAs are trusted for registries' TLS certificates by
	// spec.verify checks; nil means the system's.
	VerifyRootCAs *x509.CertPool
	// VerifyTimeout bounds one spec.verify check.
	VerifyTimeout time.Duration
	// CredentialProviderConfig is the cluster admin's
	// CredentialProviderConfig (kubelet.config.k8s.io), a file or a folder
	// of them: the only plugins provider sources may name, and how they
	// run. Empty means none.
	CredentialProviderConfig string
	// CredentialProviderBinDir holds the credential provider plugins.
	CredentialProviderBinDir string
	// PluginInheritedEnv names the variables of the controller's
	// environment a plugin gets, besides its configured env.
	PluginInheritedEnv []string
	// PluginTimeout bounds one plugin run.
	PluginTimeout time.Duration
	// ProviderSchedule says when provider sources are refreshed and
	// retried.
	ProviderSchedule credprovider.Schedule
	// ServiceAccountName is the controller's own ServiceAccount (in
	// KeyNamespace), whose tokens plugins may be given.
	ServiceAccountName string
	// PodInjectionPolicy names the MutatingAdmissionPolicy (and its
	// binding) of Pods mode, as installed.
	PodInjectionPolicy string
}

// DefaultOptions are the defaults of the controller's flags.
func DefaultOptions() Options {
	return Options{
		Workers: 32, StatusInterval: time.Second, PodRestartsPerSecond: 5, VerifyTimeout: 10 * time.Second,
		CredentialProviderBinDir: "/credential-providers", PluginTimeout: credprovider.DefaultTimeout,
		PluginInheritedEnv: slices.Clone(credprovider.DefaultInheritedEnv), PodInjectionPolicy: "pullsecrets-pod-injection",
		ProviderSchedule: credprovider.DefaultSchedule(), ServiceAccountName: "pullsecrets-controller",
	}
}

// CacheOptions configure the manager's cache: Namespaces without what the
// controller never reads, ClusterPullSecrets without managed fields; the
// label and annotation strings many objects share are kept once
// (cachetransform.go). ServiceAccounts (package accounts), the copies
// (copies.go), and Pods and workloads (package usage) are not in this
// cache: the controller keeps a record of a few words of each.
func CacheOptions() cache.Options {
	in := newInterner()
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Namespace{}:  {Transform: in.namespace},
			newUnstructuredCPS(): {Transform: stripManagedFields},
		},
	}
}

// Uncached are the kinds the manager's client must never cache: the
// controller keeps records of them instead (or, for Secrets, reads only
// the source namespaces), and a read through the cached client would
// start an informer holding every object of the kind in the cluster. With
// these, such a read goes to the API server, where the controller's role
// refuses a Secret get.
func Uncached() []client.Object {
	return []client.Object{&corev1.Secret{}, &corev1.ServiceAccount{}}
}

// RBAC, least privilege; docs/rbac.md gives the reason for every verb.
// Secret data is read only in the source namespaces (a Role); elsewhere the
// controller asks only for the metadata of its own copies and writes them
// blind. Pod deletion (restartPods) is an optional role: see package
// podrestart.
//
// +kubebuilder:rbac:groups=pullsecrets.dev,resources=clusterpullsecrets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=pullsecrets.dev,resources=clusterpullsecrets/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods;replicationcontrollers,verbs=list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;replicasets;statefulsets;daemonsets,verbs=list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",namespace=pullsecrets-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=pullsecrets-system,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups="",namespace=pullsecrets-system,resources=serviceaccounts/token,resourceNames=pullsecrets-controller,verbs=create
// +kubebuilder:rbac:groups="",namespace=pullsecrets-system,resources=events,verbs=create;patch

// Setup adds the controller to the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if len(opts.SourceNamespaces) == 0 {
		return errors.New("at least one source namespace is required")
	}
	if opts.KeyNamespace == "" {
		opts.KeyNamespace = opts.SourceNamespaces[0]
	}
	if opts.Metrics == nil {
		return errors.New("metrics are required")
	}
	if opts.Workers <= 0 || opts.StatusInterval <= 0 || opts.PodRestartsPerSecond <= 0 {
		return errors.New("workers, status interval and pod restart rate must be positive")
	}
	// Source Secrets come from a second cache that only watches the source
	// namespaces: the only Secret data the controller ever reads.
	// The key namespace also holds the Secrets of provider sources.
	namespaces := map[string]cache.Config{opts.KeyNamespace: {}}
	for _, ns := range opts.SourceNamespaces {
		namespaces[ns] = cache.Config{}
	}
	sourceCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), DefaultNamespaces: namespaces, DefaultTransform: stripManagedFields,
	})
	if err != nil {
		return fmt.Errorf("create source cache: %w", err)
	}
	if err := mgr.Add(sourceCache); err != nil {
		return err
	}
	// Protobuf, as kube-controller-manager speaks: the Pod and template
	// index lists every Pod and workload at start, and in JSON decoding
	// them took four fifths of the controller's CPU in the fleet
	// benchmark's cold start.
	pb := rest.CopyConfig(mgr.GetConfig())
	pb.ContentType = runtime.ContentTypeProtobuf
	pb.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	clientset, err := kubernetes.NewForConfig(pb)
	if err != nil {
		return err
	}

	nsQueue, cpsQueue := &queueRef{}, &queueRef{}
	notify := func(cps string) { cpsQueue.add(cps, reportCoalescing) }
	cpss := newCPSCache(mgr.GetClient())
	disco, err := discovery.NewDiscoveryClientForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	policy := newInjectionPolicy(opts.PodInjectionPolicy, mgr.GetAPIReader(), disco, dyn)
	if err := mgr.Add(policy); err != nil {
		return err
	}
	providers := newProviderConfig(opts.CredentialProviderConfig)
	if err := mgr.Add(providers); err != nil {
		return err
	}
	srcs := newSources(sourceCache, opts.SourceNamespaces, opts.KeyNamespace, providers)
	written := newOverlay(time.Now)
	read := &reader{
		client: mgr.GetClient(), namespaces: newNamespaceStore(mgr.GetCache()), cps: cpss, sources: srcs,
		// ServiceAccounts are not in the manager's cache: package accounts
		// keeps what the controller reads of them. Every event of one plans
		// its namespace; one that shows a write of ours ends what the
		// overlay remembers of it.
		accounts: accounts.New(newInterner().intern, func(ns string, old, new *accounts.Account) {
			switch {
			case new != nil:
				written.observedServiceAccount(types.NamespacedName{Namespace: ns, Name: new.Name}, new.UID, new.ResourceVersion)
			case old != nil:
				written.observedServiceAccount(types.NamespacedName{Namespace: ns, Name: old.Name}, old.UID, "")
			}
			nsQueue.add(ns, 0)
		}),
		usage: usage.New(func(ns string) { nsQueue.add(ns, 0) }, func() {
			// Every namespace was planned without knowing its Pods and
			// templates, and status waited for them: plan and report
			// everything again.
			nsQueue.add(everything, 0)
		}), overlay: written, conflicts: newConflicts(time.Now), fights: newReattachments(time.Now, contest.DefaultPolicy().Memory),
		own: newOwnCopies(),
	}
	// The copies are not in the manager's cache either: copies.go keeps a
	// record of each. Every event of one plans its namespace; one that
	// shows a write of ours ends what the overlay remembers of it.
	copyStrings := newInterner().intern
	read.copies = newCopies(copyStrings, func(ns string, old, new *copyRecord) {
		switch {
		case new != nil:
			read.overlay.observedCopy(types.NamespacedName{Namespace: ns, Name: new.name}, new.uid, new.resourceVersion)
		case old != nil:
			read.overlay.observedCopy(types.NamespacedName{Namespace: ns, Name: old.name}, old.uid, "")
		}
		nsQueue.add(ns, 0)
	})
	events := newEventSink(mgr.GetEventRecorder("pullsecrets-controller"))
	b := newBoard()
	read.keys = &keyring{
		namespace: opts.KeyNamespace, live: mgr.GetAPIReader(), cps: cpss, client: mgr.GetClient(), elected: mgr.Elected(),
		recorder: mgr.GetEventRecorder("pullsecrets-controller"), metrics: &opts.Metrics.key, now: time.Now,
		log: ctrl.Log.WithName("ownership-key"), kick: make(chan struct{}, 1), watched: sourceCache, accounts: read.accounts, copies: read.copies,
		// A new ring, or none: plan and report everything again.
		changed: func() { nsQueue.add(everything, 0) },
	}
	for _, r := range []manager.Runnable{read.keys, &usageIndex{usage: read.usage, clientset: clientset}, &recordIndexes{read: read, clientset: clientset}, &sweeper{read: read}} {
		if err := mgr.Add(r); err != nil {
			return err
		}
	}
	if err := mgr.AddReadyzCheck("ownership-key", read.keys.readyz); err != nil {
		return err
	}

	nsr := &namespaceReconciler{
		client: mgr.GetClient(), apiReader: mgr.GetAPIReader(), read: read, board: b, notify: notify, events: events,
		enqueue: func(ns string) { nsQueue.add(ns, 0) },
		write: &writer{
			client: mgr.GetClient(), reader: mgr.GetAPIReader(), account: read.accounts.Account, copies: read.copies, sources: read.sources, cps: cpss, overlay: read.overlay,
			conflicts: read.conflicts, fights: read.fights, own: read.own, restarter: podrestart.New(mgr.GetClient(), opts.PodRestartsPerSecond), events: events,
			intern: copyStrings,
		},
	}
	allNamespaces := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{everythingRequest}
	})
	sourceToNamespaces := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *corev1.Secret) []reconcile.Request {
		// When the ClusterPullSecrets cannot be read, everything: a
		// source change is never dropped.
		if reqs, err := cpsRequestsForSource(ctx, cpss, secret, opts.KeyNamespace); err == nil && len(reqs) == 0 {
			return nil
		}
		return []reconcile.Request{everythingRequest}
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("namespace").
		For(&corev1.Namespace{}).
		// A ServiceAccount's or a copy's change plans its namespace (their
		// indexes, above); the workers start once both are listed.
		WatchesRawSource(indexesSynced{read}).
		Watches(newUnstructuredCPS(), allNamespaces, builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, injectionPublished()))).
		WatchesRawSource(source.Kind(sourceCache, &corev1.Secret{}, sourceToNamespaces)).
		WatchesRawSource(nsQueue.source()).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers}).
		Complete(nsr)
	if err != nil {
		return fmt.Errorf("create namespace controller: %w", err)
	}

	cpsr := &cpsReconciler{
		client: mgr.GetClient(), read: read, board: b, events: events, statusInterval: opts.StatusInterval, metrics: opts.Metrics,
		lastWrite: map[string]time.Time{},
	}
	cpsr.verifier = newVerifier(opts.VerifyRootCAs, opts.VerifyTimeout, opts.Metrics, read, notify)
	if err := mgr.Add(cpsr.verifier); err != nil {
		return err
	}
	cpsr.refresher = newRefresher(opts, providers, mgr.GetClient(), sourceCache, mgr.GetAPIReader(), clientset, cpss, notify, opts.Metrics)
	srcs.pending = cpsr.refresher.pendingNote
	cpsr.providers = providers
	cpsr.policy = policy
	read.policy = policy
	policy.changed = func() {
		// Pods mode works, or stopped working: every namespace's state of
		// a Pods-mode ClusterPullSecret depends on it (and then their
		// status).
		nsQueue.add(everything, 0)
	}
	providers.changed = func() {
		// What every provider source may do changed: plan them again, and
		// every namespace, whose copies come from them.
		cpsr.refresher.wake()
		nsQueue.add(everything, 0)
	}
	if err := mgr.Add(cpsr.refresher); err != nil {
		return err
	}
	sourceToCPS := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *corev1.Secret) []reconcile.Request {
		reqs, err := cpsRequestsForSource(ctx, cpss, secret, opts.KeyNamespace)
		if err != nil {
			// Reported and retried by the namespace controller, which
			// reports every ClusterPullSecret again once it can list them.
			nsQueue.add(everything, 0)
		}
		return reqs
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("clusterpullsecret").
		For(newUnstructuredCPS(), builder.WithPredicates(predicate.Or[client.Object](
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, finalizersChanged()))).
		WatchesRawSource(cpsQueue.source()).
		WatchesRawSource(source.Kind(sourceCache, &corev1.Secret{}, sourceToCPS)).
		// Status and deletions read the ServiceAccounts and the copies.
		WatchesRawSource(indexesSynced{read}).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(cpsr)
	if err != nil {
		return fmt.Errorf("create ClusterPullSecret controller: %w", err)
	}
	return nil
}

// reportCoalescing is how long a namespace's report waits for others before
// the ClusterPullSecret's status is computed again: during a rollout a
// thousand namespaces report within seconds, and the queue folds each burst
// into one status computation.
const reportCoalescing = 100 * time.Millisecond

// queueRef lets code outside a controller enqueue into it. The work queue
// deduplicates, so nothing is dropped however many reports come.
type queueRef struct {
	mu sync.Mutex
	q  workqueue.TypedRateLimitingInterface[reconcile.Request]
}

func (r *queueRef) source() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.q = q
		return nil
	})
}

// add enqueues name after a delay; before the controller starts it does
// nothing (its initial list enqueues everything).
func (r *queueRef) add(name string, after time.Duration) {
	r.mu.Lock()
	q := r.q
	r.mu.Unlock()
	if q == nil {
		return
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: name}}
	if after > 0 {
		q.AddAfter(req, after)
		return
	}
	q.Add(req)
}

// injectionPublished passes updates that publish, change or withdraw a
// ClusterPullSecret's status.injection: every namespace's plan depends on
// it, and the planner asks for its own re-plan when the injection takes
// effect (Plan.RecheckAfter).
func injectionPublished() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		injection := func(o client.Object) any {
			u, ok := o.(*unstructured.Unstructured)
			if !ok {
				return nil
			}
			v, _, _ := unstructured.NestedFieldNoCopy(u.Object, "status", "injection")
			return v
		}
		return !equality.Semantic.DeepEqual(injection(e.ObjectOld), injection(e.ObjectNew))
	}}
}

// finalizersChanged passes updates that add or remove finalizers: the
// generation does not move for them.
func finalizersChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers()) ||
			(e.ObjectOld.GetDeletionTimestamp() == nil) != (e.ObjectNew.GetDeletionTimestamp() == nil)
	}}
}

// everything, a name no namespace can have, asks the namespace controller
// to plan every namespace and report every ClusterPullSecret again
// (namespaceReconciler.wakeAll): one request, deduplicated by the work
// queue, whose failures are retried with the queue's backoff, so no
// wake-up is dropped.
const everything = ""

var everythingRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: everything}}

// cpsRequestsForSource lists the ClusterPullSecrets whose source is the
// Secret: named in the spec, or holding a provider source's credential.
func cpsRequestsForSource(ctx context.Context, cpss *cpsCache, secret *corev1.Secret, keyNamespace string) ([]reconcile.Request, error) {
	all, err := cpss.list(ctx)
	if err != nil {
		return nil, err
	}
	var reqs []reconcile.Request
	for _, c := range all {
		if c.obj == nil {
			continue
		}
		src := c.obj.Spec.Source
		named := src.Provider == nil && src.Namespace == secret.Namespace && src.Name == secret.Name
		provided := src.Provider != nil && secret.Namespace == keyNamespace && secret.Name == providerSecretName(c.obj.Name)
		if named || provided {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: c.obj.Name}})
		}
	}
	return reqs, nil
}

func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// usageIndex runs the index of Pods and templates. It runs on every
// replica: a standby has it warm when it becomes leader.
type usageIndex struct {
	usage     *usage.Index
	clientset kubernetes.Interface
}

func (u *usageIndex) NeedLeaderElection() bool { return false }

func (u *usageIndex) Start(ctx context.Context) error {
	u.usage.Start(ctx, u.clientset)
	<-ctx.Done()
	return nil
}

// recordIndexes runs the indexes of ServiceAccounts and copies, on every
// replica like the usage index: a standby has them warm when it leads.
type recordIndexes struct {
	read      *reader
	clientset kubernetes.Interface
}

func (x *recordIndexes) NeedLeaderElection() bool { return false }

func (x *recordIndexes) Start(ctx context.Context) error {
	x.read.accounts.Start(ctx, x.clientset)
	runCopies(ctx, x.read.copies, x.clientset)
	return nil
}

// indexesSynced is a source of no events that holds a controller's
// workers until the ServiceAccounts and the copies are listed: a plan
// without them would see none.
type indexesSynced struct{ read *reader }

func (s indexesSynced) Start(context.Context, workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	return nil
}

func (s indexesSynced) WaitForSync(ctx context.Context) error {
	if err := s.read.accounts.WaitForSync(ctx); err != nil {
		return fmt.Errorf("ServiceAccounts: %w", err)
	}
	if err := s.read.copies.WaitForSync(ctx); err != nil {
		return fmt.Errorf("copies: %w", err)
	}
	return nil
}

// sweeper forgets what the overlay and the fights' memory no longer need.
type sweeper struct {
	read *reader
}

func (s *sweeper) NeedLeaderElection() bool { return false }

func (s *sweeper) Start(ctx context.Context) error {
	ticker := time.NewTicker(overlayTTL)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			s.read.overlay.sweep()
			s.read.fights.sweep()
		}
	}
}
