package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/selection"
)

// cpsReconciler owns a ClusterPullSecret's finalizer and status.
type cpsReconciler struct {
	client         client.Client
	sources        *sources
	board          *board
	recorder       events.EventRecorder
	statusInterval time.Duration
	metrics        *Metrics
	verifier       *verifier

	mu        sync.Mutex
	lastWrite map[string]time.Time
	heldSince map[string]time.Time
}

func (r *cpsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var cps v1alpha1.ClusterPullSecret
	if err := r.client.Get(ctx, req.NamespacedName, &cps); err != nil {
		if apierrors.IsNotFound(err) {
			r.board.forget(req.Name)
			r.metrics.forget(req.Name)
			r.verifier.forget(req.Name)
			r.release(req.Name)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if cps.DeletionTimestamp != nil {
		return r.finalize(ctx, &cps)
	}
	if !controllerutil.ContainsFinalizer(&cps, v1alpha1.Finalizer) {
		patch := client.MergeFrom(cps.DeepCopy())
		controllerutil.AddFinalizer(&cps, v1alpha1.Finalizer)
		if err := r.client.Patch(ctx, &cps, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("add finalizer to ClusterPullSecret %s: %w", cps.Name, err)
		}
	}

	status, nextCheck, partial, err := r.observe(ctx, &cps)
	if err != nil {
		return ctrl.Result{}, err
	}
	ready := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	requeue := nextCheck
	if ready.Status != metav1.ConditionTrue && (requeue == 0 || r.statusInterval < requeue) {
		// Catch up with progress even if a notification was missed.
		requeue = r.statusInterval
	}
	if !partial {
		r.release(cps.Name)
	}
	if equality.Semantic.DeepEqual(*status, cps.Status) {
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	if partial && wasReady(&cps) && cps.Status.SourceResourceVersion == status.SourceResourceVersion && r.hold(cps.Name) {
		// Right after a restart the namespaces report one by one. For the
		// same spec and source, the Ready status written before the
		// restart is better than a partial count: keep it until every
		// namespace has reported, so that a restart of a converged
		// controller writes nothing. Each report wakes this reconciler
		// again. (A rollout in progress is not Ready: its counts go on.)
		return ctrl.Result{RequeueAfter: requeue}, nil
	}
	// Status writes are paced so that a rollout over thousands of
	// namespaces costs a handful of them, not one per namespace.
	if wait := r.untilNextWrite(cps.Name); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	r.emitTransition(&cps, ready)
	patch := client.MergeFrom(cps.DeepCopy())
	cps.Status = *status
	if err := r.client.Status().Patch(ctx, &cps, patch); err != nil {
		return ctrl.Result{}, fmt.Errorf("update status of ClusterPullSecret %s: %w", cps.Name, err)
	}
	r.mu.Lock()
	r.lastWrite[cps.Name] = time.Now()
	r.mu.Unlock()
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// maxHold bounds how long a Ready status is kept while namespaces report:
// a namespace that never reports must not hide behind it for ever.
const maxHold = time.Minute

// hold reports whether the stored status may still be kept, starting the
// clock at the first call.
func (r *cpsReconciler) hold(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	since, ok := r.heldSince[name]
	if !ok {
		r.heldSince[name] = time.Now()
		return true
	}
	return time.Since(since) < maxHold
}

func (r *cpsReconciler) release(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.heldSince, name)
}

// wasReady reports whether the stored status is Ready for the current
// generation.
func wasReady(cps *v1alpha1.ClusterPullSecret) bool {
	ready := meta.FindStatusCondition(cps.Status.Conditions, v1alpha1.ConditionReady)
	return cps.Status.ObservedGeneration == cps.Generation && ready != nil &&
		ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == cps.Generation
}

func (r *cpsReconciler) untilNextWrite(name string) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.lastWrite[name]
	if !ok {
		return 0
	}
	return r.statusInterval - time.Since(last)
}

// observe computes the status from the source, the namespace cache and the
// namespace reconcilers' reports; partial is true while some matched
// namespace has not reported to this process yet.
func (r *cpsReconciler) observe(ctx context.Context, cps *v1alpha1.ClusterPullSecret) (
	*v1alpha1.ClusterPullSecretStatus, time.Duration, bool, error,
) {
	status := cps.Status.DeepCopy()
	status.ObservedGeneration = cps.Generation
	status.SecretName = secretNameOf(cps)
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: cps.Generation}
	defer func() {
		meta.SetStatusCondition(&status.Conditions, cond)
	}()

	sel, err := selection.New(&cps.Spec)
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error()
		return status, 0, false, nil
	}
	src, err := r.sources.get(ctx, cps)
	if err != nil {
		return nil, 0, false, err
	}
	r.metrics.sourceValid(cps.Name, src.ok())
	status.SourceResourceVersion = src.ResourceVersion

	var nextCheck time.Duration
	if cps.Spec.Verify == nil {
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionCredentialsVerified)
		status.LastVerification = nil
	} else {
		verified, at, next := r.verifier.observe(ctx, cps, src, time.Now())
		meta.SetStatusCondition(&status.Conditions, verified)
		nextCheck = next
		if at.IsZero() {
			status.LastVerification = nil
		} else if status.LastVerification == nil || !status.LastVerification.Time.Equal(at.Truncate(time.Second)) {
			t := metav1.NewTime(at.Truncate(time.Second))
			status.LastVerification = &t
		}
	}

	var namespaces corev1.NamespaceList
	// Read-only, and done on every report during a rollout: no deep copy of
	// thousands of cached Namespaces each time.
	if err := r.client.List(ctx, &namespaces, client.UnsafeDisableDeepCopy); err != nil {
		return nil, 0, false, fmt.Errorf("list namespaces: %w", err)
	}
	matched := map[string]bool{}
	for i := range namespaces.Items {
		if sel.Namespace(&namespaces.Items[i]) {
			matched[namespaces.Items[i].Name] = true
		}
	}
	sum := r.board.summarize(cps.Name, matched)
	status.Namespaces = v1alpha1.NamespaceCounts{
		Matched: int32(len(matched)), Ready: int32(sum.Ready), Summary: fmt.Sprintf("%d/%d", sum.Ready, len(matched)),
	}
	status.ServiceAccountsAttached = int32(sum.Attached)
	status.PendingRetirement = int32(sum.Pending)
	status.FailingNamespaces = sum.Failing
	r.metrics.namespaces(cps.Name, len(matched), sum.Ready, sum.Unhealthy)

	switch {
	case !src.ok():
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, src.Reason, src.Message+"; existing copies are left as they are"
	case len(matched) == 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1alpha1.ReasonNoNamespaces, "no namespace is selected"
	case sum.Ready == len(matched):
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReady
		cond.Message = fmt.Sprintf("Secret %s is in %d namespaces and attached to %d ServiceAccounts", status.SecretName, sum.Ready, sum.Attached)
	case sum.Reasons[v1alpha1.ReasonConflict] > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonConflict
		cond.Message = fmt.Sprintf("%d namespaces have a Secret named %s that pullsecrets did not create: %s",
			sum.Reasons[v1alpha1.ReasonConflict], status.SecretName, failingWith(sum, v1alpha1.ReasonConflict))
	case sum.Reasons[v1alpha1.ReasonWriteFailed] > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonWriteFailed
		cond.Message = fmt.Sprintf("writes failed in %d namespaces: %s", sum.Reasons[v1alpha1.ReasonWriteFailed], failingWith(sum, v1alpha1.ReasonWriteFailed))
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonProgressing
		cond.Message = fmt.Sprintf("%d of %d namespaces ready", sum.Ready, len(matched))
	}
	if sum.Pending > 0 && cond.Status == metav1.ConditionTrue {
		cond.Message += fmt.Sprintf("; %d old copies wait for the Pods that list them", sum.Pending)
	}
	return status, nextCheck, sum.Known < len(matched), nil
}

func failingWith(sum summary, reason string) string {
	var names []string
	for _, f := range sum.Failing {
		if f.Reason == reason {
			names = append(names, f.Namespace)
		}
	}
	return strings.Join(names, ", ")
}

// emitTransition records an Event when the Ready reason changes; Event
// reasons are the condition reasons.
func (r *cpsReconciler) emitTransition(cps *v1alpha1.ClusterPullSecret, next *metav1.Condition) {
	prev := meta.FindStatusCondition(cps.Status.Conditions, v1alpha1.ConditionReady)
	if prev != nil && prev.Reason == next.Reason {
		return
	}
	if next.Reason == v1alpha1.ReasonProgressing {
		return // transient; Ready or a failure follows
	}
	eventType := corev1.EventTypeNormal
	if next.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.recorder.Eventf(cps, nil, eventType, next.Reason, "Reconcile", "%s", next.Message)
}

// finalize removes the finalizer once the namespace reconcilers have
// detached every name and deleted every copy of the ClusterPullSecret.
func (r *cpsReconciler) finalize(ctx context.Context, cps *v1alpha1.ClusterPullSecret) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cps, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	left, err := r.leftovers(ctx, cps.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	if left > 0 {
		return ctrl.Result{RequeueAfter: time.Second}, nil
	}
	patch := client.MergeFrom(cps.DeepCopy())
	controllerutil.RemoveFinalizer(cps, v1alpha1.Finalizer)
	if err := r.client.Patch(ctx, cps, patch); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("remove finalizer from ClusterPullSecret %s: %w", cps.Name, err)
	}
	r.board.forget(cps.Name)
	r.metrics.forget(cps.Name)
	r.verifier.forget(cps.Name)
	return ctrl.Result{}, nil
}

// leftovers counts copies and ServiceAccount attachments still recorded for
// the ClusterPullSecret.
func (r *cpsReconciler) leftovers(ctx context.Context, name string) (int, error) {
	copies := &metav1.PartialObjectMetadataList{}
	copies.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.client.List(ctx, copies, client.MatchingLabels{
		v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: name,
	}); err != nil {
		return 0, fmt.Errorf("list copies of %s: %w", name, err)
	}
	var sas corev1.ServiceAccountList
	if err := r.client.List(ctx, &sas, client.MatchingFields{indexAttachedBy: name}); err != nil {
		return 0, fmt.Errorf("list ServiceAccounts attached by %s: %w", name, err)
	}
	// What is left in a terminating namespace goes away with it.
	terminating := map[string]bool{}
	var namespaces corev1.NamespaceList
	if err := r.client.List(ctx, &namespaces); err != nil {
		return 0, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range namespaces.Items {
		if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
			terminating[ns.Name] = true
		}
	}
	left := 0
	for _, c := range copies.Items {
		if !terminating[c.Namespace] {
			left++
		}
	}
	for _, sa := range sas.Items {
		if !terminating[sa.Namespace] {
			left++
		}
	}
	return left, nil
}
