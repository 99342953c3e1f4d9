package controller

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// indexAttachedBy indexes ServiceAccounts by the ClusterPullSecrets in
// their attachment record, to know when a deleted one is cleaned up.
const indexAttachedBy = "pullsecrets.dev/attached-by"

// Options configure the controller.
type Options struct {
	// SourceNamespaces are the only namespaces source Secrets may live in,
	// and the only ones whose Secrets the controller reads.
	SourceNamespaces []string
	// Workers is the number of namespaces reconciled in parallel.
	Workers int
	// StatusInterval is the least time between two status writes of one
	// ClusterPullSecret.
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
}

// DefaultOptions are the defaults of the controller's flags.
func DefaultOptions() Options {
	return Options{Workers: 32, StatusInterval: time.Second, PodRestartsPerSecond: 5, VerifyTimeout: 10 * time.Second}
}

// CacheOptions configure the manager's cache: Secrets are cached only when
// labelled as our copies (and only their metadata is ever requested), and
// Pods, ServiceAccounts and Namespaces are stripped of what we never read,
// so memory does not grow with unrelated objects.
func CacheOptions() cache.Options {
	managed := labels.SelectorFromSet(labels.Set{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue})
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:         {Label: managed, Transform: stripManagedFields},
			&corev1.Pod{}:            {Transform: slimPod},
			&corev1.ServiceAccount{}: {Transform: stripManagedFields},
			&corev1.Namespace{}:      {Transform: stripManagedFields},
		},
	}
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
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods;replicationcontrollers,verbs=list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;replicasets;statefulsets;daemonsets,verbs=list;watch
// +kubebuilder:rbac:groups=batch,resources=jobs;cronjobs,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",namespace=pullsecrets-system,resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=pullsecrets-system,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups="",namespace=pullsecrets-system,resources=events,verbs=create;patch

// Setup adds the controller to the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if len(opts.SourceNamespaces) == 0 {
		return errors.New("at least one source namespace is required")
	}
	if opts.Metrics == nil {
		return errors.New("metrics are required")
	}
	if opts.Workers <= 0 || opts.StatusInterval <= 0 || opts.PodRestartsPerSecond <= 0 {
		return errors.New("workers, status interval and pod restart rate must be positive")
	}
	ctx := context.Background()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &corev1.ServiceAccount{}, indexAttachedBy, func(obj client.Object) []string {
		rec, err := serviceaccount.ReadRecord(obj.(*corev1.ServiceAccount))
		if err != nil {
			return nil
		}
		owners := make([]string, 0, len(rec))
		for _, owner := range rec {
			owners = append(owners, owner)
		}
		return owners
	}); err != nil {
		return fmt.Errorf("index ServiceAccounts: %w", err)
	}

	// Source Secrets come from a second cache that only watches the source
	// namespaces: the only Secret data the controller ever reads.
	namespaces := map[string]cache.Config{}
	for _, ns := range opts.SourceNamespaces {
		namespaces[ns] = cache.Config{}
	}
	sourceCache, err := cache.New(mgr.GetConfig(), cache.Options{
		Scheme:            mgr.GetScheme(),
		Mapper:            mgr.GetRESTMapper(),
		DefaultNamespaces: namespaces,
		DefaultTransform:  stripManagedFields,
	})
	if err != nil {
		return fmt.Errorf("create source cache: %w", err)
	}
	if err := mgr.Add(sourceCache); err != nil {
		return err
	}

	m := opts.Metrics
	recorder := mgr.GetEventRecorder("pullsecrets-controller")
	srcs := newSources(sourceCache, opts.SourceNamespaces)
	b := newBoard()
	statusEvents := make(chan event.GenericEvent, 4096)
	notify := func(cps string) {
		select {
		case statusEvents <- event.GenericEvent{Object: &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: cps}}}:
		default:
			// Full: the ClusterPullSecret reconciler requeues itself while
			// not ready, so the change is picked up within StatusInterval.
		}
	}

	nsr := &namespaceReconciler{
		client:    mgr.GetClient(),
		apiReader: mgr.GetAPIReader(),
		sources:   srcs,
		copies:    &copies{client: mgr.GetClient(), log: newWriteLog()},
		board:     b,
		memo:      newMemo(),
		recorder:  recorder,
		restarts:  rate.NewLimiter(rate.Limit(opts.PodRestartsPerSecond), 1),
		notify:    notify,
	}
	allNamespaces := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return listNamespaceRequests(ctx, mgr.GetClient())
	})
	toNamespace := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetNamespace()}}}
	})
	sourceToNamespaces := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *corev1.Secret) []reconcile.Request {
		if !isSourceOfAny(ctx, mgr.GetClient(), secret) {
			return nil
		}
		return listNamespaceRequests(ctx, mgr.GetClient())
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("namespace").
		For(&corev1.Namespace{}).
		Watches(&corev1.ServiceAccount{}, toNamespace).
		WatchesMetadata(&corev1.Secret{}, toNamespace).
		Watches(&corev1.Pod{}, toNamespace, builder.WithPredicates(podPredicate())).
		Watches(&v1alpha1.ClusterPullSecret{}, allNamespaces, builder.WithPredicates(specOrDeletionChanged())).
		WatchesRawSource(source.Kind(sourceCache, &corev1.Secret{}, sourceToNamespaces)).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.Workers}).
		Complete(nsr)
	if err != nil {
		return fmt.Errorf("create namespace controller: %w", err)
	}

	cpsr := &cpsReconciler{
		client:         mgr.GetClient(),
		sources:        srcs,
		board:          b,
		recorder:       recorder,
		statusInterval: opts.StatusInterval,
		metrics:        m,
		verifier:       newVerifier(opts.VerifyRootCAs, opts.VerifyTimeout, m),
		lastWrite:      map[string]time.Time{},
		heldSince:      map[string]time.Time{},
	}
	sourceToCPS := handler.TypedEnqueueRequestsFromMapFunc(func(ctx context.Context, secret *corev1.Secret) []reconcile.Request {
		return cpsRequestsForSource(ctx, mgr.GetClient(), secret)
	})
	err = ctrl.NewControllerManagedBy(mgr).
		Named("clusterpullsecret").
		For(&v1alpha1.ClusterPullSecret{}).
		WatchesRawSource(source.Channel(statusEvents, coalesceReports)).
		WatchesRawSource(source.Kind(sourceCache, &corev1.Secret{}, sourceToCPS)).
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Complete(cpsr)
	if err != nil {
		return fmt.Errorf("create ClusterPullSecret controller: %w", err)
	}
	return nil
}

// reportCoalescing is how long a namespace's report waits for others before
// the ClusterPullSecret's status is computed again.
const reportCoalescing = 100 * time.Millisecond

// coalesceReports enqueues a ClusterPullSecret for the namespaces' reports
// after reportCoalescing: during a rollout a thousand namespaces report
// within seconds, and the queue folds each burst into one status
// computation instead of one per report.
var coalesceReports = handler.Funcs{
	GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		q.AddAfter(reconcile.Request{NamespacedName: types.NamespacedName{Name: e.Object.GetName()}}, reportCoalescing)
	},
}

func listNamespaceRequests(ctx context.Context, c client.Client) []reconcile.Request {
	var list corev1.NamespaceList
	if err := c.List(ctx, &list); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, ns := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: ns.Name}})
	}
	return reqs
}

func isSourceOfAny(ctx context.Context, c client.Client, secret *corev1.Secret) bool {
	return len(cpsRequestsForSource(ctx, c, secret)) > 0
}

func cpsRequestsForSource(ctx context.Context, c client.Client, secret *corev1.Secret) []reconcile.Request {
	var list v1alpha1.ClusterPullSecretList
	if err := c.List(ctx, &list); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, cps := range list.Items {
		if cps.Spec.Source.Namespace == secret.Namespace && cps.Spec.Source.Name == secret.Name {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: cps.Name}})
		}
	}
	return reqs
}

// specOrDeletionChanged passes ClusterPullSecret events that change what
// namespaces must hold: creation, spec changes (the generation also moves
// when deletion starts) and removal. Status writes do not pass, or every
// status write would touch every namespace.
func specOrDeletionChanged() predicate.Predicate {
	return predicate.GenerationChangedPredicate{}
}

// podPredicate passes the Pod events that matter: a Pod starts failing to
// pull (restartPods), or a Pod goes away (a copy waiting for retirement may
// now be deleted).
func podPredicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return pullfailure.IsStuck(e.Object.(*corev1.Pod)) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			return pullfailure.IsStuck(e.ObjectNew.(*corev1.Pod)) && !pullfailure.IsStuck(e.ObjectOld.(*corev1.Pod))
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// slimPod keeps only what restartPods and retirement read: owner,
// ServiceAccount, imagePullSecrets, images, phase and container states.
func slimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	slim := &corev1.Pod{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			OwnerReferences: pod.OwnerReferences, DeletionTimestamp: pod.DeletionTimestamp, CreationTimestamp: pod.CreationTimestamp,
		},
		Spec: corev1.PodSpec{
			ServiceAccountName:       pod.Spec.ServiceAccountName,
			DeprecatedServiceAccount: pod.Spec.DeprecatedServiceAccount,
			ImagePullSecrets:         pod.Spec.ImagePullSecrets,
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	slim.Status.InitContainerStatuses = slimStatuses(pod.Status.InitContainerStatuses)
	slim.Status.ContainerStatuses = slimStatuses(pod.Status.ContainerStatuses)
	slim.Status.EphemeralContainerStatuses = slimStatuses(pod.Status.EphemeralContainerStatuses)
	return slim, nil
}

func slimStatuses(in []corev1.ContainerStatus) []corev1.ContainerStatus {
	if len(in) == 0 {
		return nil
	}
	out := make([]corev1.ContainerStatus, len(in))
	for i, cs := range in {
		out[i] = corev1.ContainerStatus{Name: cs.Name, Image: cs.Image}
		if w := cs.State.Waiting; w != nil {
			out[i].State.Waiting = &corev1.ContainerStateWaiting{Reason: w.Reason}
		}
	}
	return out
}
