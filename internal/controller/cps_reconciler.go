package controller

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/firstn"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// maxListed bounds each list in status.
const maxListed = 20

// deletionRecheck is how often a deletion that waits is looked at again,
// besides the namespace reports that wake it.
const deletionRecheck = time.Minute

// cpsReconciler owns a ClusterPullSecret's finalizer and status. Status is
// computed from what the cluster shows: the namespace reconcilers' reports
// of their last plans, and the caches for namespaces with no report.
type cpsReconciler struct {
	client         client.Client
	read           *reader
	board          *board
	events         *eventSink
	statusInterval time.Duration
	metrics        *Metrics
	verifier       *verifier
	refresher      *refresher
	providers      *providerConfig
	policy         *injectionPolicy

	mu        sync.Mutex
	lastWrite map[string]time.Time
}

func (r *cpsReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	d, u, err := r.read.cps.get(ctx, req.Name)
	if apierrors.IsNotFound(err) {
		r.forget(req.Name)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if u.GetDeletionTimestamp() != nil {
		return r.finalize(ctx, u, d)
	}
	if !slices.Contains(u.GetFinalizers(), v1alpha1.Finalizer) {
		if err := r.setFinalizer(ctx, u, true); err != nil {
			return ctrl.Result{}, err
		}
	}
	if !r.read.usage.Synced() {
		// Status names stuck Pods and what holds old copies: it waits the
		// few seconds until they are listed (the index then wakes every
		// ClusterPullSecret), so that a restart never flaps it.
		return ctrl.Result{}, nil
	}
	if wait := r.untilNextWrite(req.Name); wait > 0 {
		// The status is written at most once per statusInterval, and
		// computing it reads every namespace: in a cold start every
		// namespace that converges asks for it, so a reconcile inside the
		// interval waits for its end instead of summarizing the fleet
		// for a write it may not make (a quarter of the controller's CPU
		// at 10,000 namespaces).
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	status := r.observe(ctx, u, d)
	return r.writeStatus(ctx, u, d, status)
}

func (r *cpsReconciler) forget(name string) {
	r.board.dropCPS(name)
	r.metrics.forget(name)
	r.verifier.forget(name)
	r.mu.Lock()
	delete(r.lastWrite, name)
	r.mu.Unlock()
}

// setFinalizer adds or removes the finalizer with optimistic concurrency
// (the resourceVersion read), so that a concurrent edit of the list is
// never lost.
func (r *cpsReconciler) setFinalizer(ctx context.Context, u *unstructured.Unstructured, present bool) error {
	list := slices.DeleteFunc(slices.Clone(u.GetFinalizers()), func(f string) bool { return f == v1alpha1.Finalizer })
	if present {
		list = append(list, v1alpha1.Finalizer)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": list, "resourceVersion": u.GetResourceVersion()}})
	if err != nil {
		return err
	}
	obj := newUnstructuredCPS()
	obj.SetName(u.GetName())
	err = r.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
	if err != nil && (!apierrors.IsNotFound(err) || present) {
		return fmt.Errorf("update finalizers of ClusterPullSecret %s: %w", u.GetName(), err)
	}
	return nil
}

// observe computes the status.
func (r *cpsReconciler) observe(ctx context.Context, u *unstructured.Unstructured, d decodedCPS) *v1alpha1.ClusterPullSecretStatus {
	var status v1alpha1.ClusterPullSecretStatus
	if d.obj != nil {
		status = *d.obj.Status.DeepCopy()
	}
	gen := u.GetGeneration()
	status.ObservedGeneration = gen
	cond := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: gen}
	defer func() { meta.SetStatusCondition(&status.Conditions, cond) }()
	if why := r.read.keyProblem(); why != "" {
		// Nothing is written without the ownership key.
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonOwnershipKeyMissing, why
		return &status
	}

	if d.plan.Invalid != "" {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, d.plan.Invalid+"; nothing of it is changed until it is fixed"
		r.metrics.sourceValid(u.GetName(), false)
		return &status
	}
	status.SecretName = d.plan.SecretName
	src := r.read.sources.get(ctx, d.obj)
	r.metrics.sourceValid(u.GetName(), src.ok())
	status.SourceResourceVersion = src.ResourceVersion
	r.observeVerification(d.obj, &status)
	expired := r.observeCredential(ctx, d.obj, &status)

	sum, err := r.summarize(ctx, d, r.read.namespaces, wasReady(d.obj))
	if err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonProgressing, "namespaces cannot be listed"
		return &status
	}
	status.Namespaces = v1alpha1.NamespaceCounts{
		Matched: int32(sum.matched), Ready: int32(sum.ready), Summary: fmt.Sprintf("%d/%d", sum.ready, sum.matched),
	}
	status.ServiceAccountsAttached = int32(sum.attached)
	status.PendingRetirement = int32(sum.retiringCount)
	status.Retiring = sum.retiring
	status.StuckPods = sum.stuck
	status.FailingNamespaces = sum.failing
	r.metrics.namespaces(u.GetName(), sum.matched, sum.ready, sum.matched-sum.ready)
	available, unavailable := r.policy.state()
	if err := r.observeInjection(ctx, d, src, available, sum.ready == sum.matched, &status); err != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonProgressing, err.Error()
		return &status
	}

	switch {
	case d.obj.Spec.AttachTo == v1alpha1.AttachToPods && !available:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonPodInjectionUnavailable, unavailable+"; copies are kept, no Pod gets the name"
	case !src.ok():
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, src.Problem, src.Message+"; existing copies are left as they are"
	case expired != "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonCredentialExpired, expired
	case sum.matched == 0:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1alpha1.ReasonNoNamespaces, "no namespace is selected"
	case sum.ready == sum.matched:
		cond.Status, cond.Reason = metav1.ConditionTrue, v1alpha1.ReasonReady
		cond.Message = fmt.Sprintf("Secret %s is in %d namespaces and attached to %d ServiceAccounts", status.SecretName, sum.ready, sum.attached)
		if sum.retiringCount > 0 {
			cond.Message += fmt.Sprintf("; %d old copies wait for what still uses them", sum.retiringCount)
		}
	default:
		reason := worstReason(sum.reasons)
		cond.Status, cond.Reason = metav1.ConditionFalse, reason
		cond.Message = fmt.Sprintf("%d of %d namespaces ready; %s in %d: %s", sum.ready, sum.matched, reason, sum.reasons[reason], failingWith(sum.failing, reason))
	}
	return &status
}

// observeInjection fills status.injection, the params of the pod-injection
// policy.
func (r *cpsReconciler) observeInjection(ctx context.Context, d decodedCPS, src sourceState, available, settled bool, status *v1alpha1.ClusterPullSecretStatus) error {
	if d.obj.Spec.AttachTo != v1alpha1.AttachToPods && d.obj.Status.Injection == nil {
		status.Injection = nil
		return nil
	}
	var skipped []string
	if d.obj.Spec.AttachTo == v1alpha1.AttachToPods {
		var err error
		if skipped, err = r.skippedServiceAccounts(ctx, d); err != nil {
			return err
		}
	}
	// Its publication wakes every namespace through the watch
	// (injectionPublished).
	status.Injection = desiredInjection(d.obj, src, available, skipped, settled, time.Now())
	return nil
}

// worstReason picks the reason the Ready condition shows when namespaces
// disagree: what needs a person first.
func worstReason(reasons map[string]int) string {
	for _, r := range []string{v1alpha1.ReasonConflict, v1alpha1.ReasonWriteFailed, v1alpha1.ReasonRecordInvalid,
		v1alpha1.ReasonContested, v1alpha1.ReasonPodInjectionUnavailable} {
		if reasons[r] > 0 {
			return r
		}
	}
	return v1alpha1.ReasonProgressing
}

// failingWith names the first namespaces failing for reason, with why.
func failingWith(failing []v1alpha1.NamespaceFailure, reason string) string {
	var parts []string
	for _, f := range failing {
		if f.Reason != reason {
			continue
		}
		if len(parts) == 3 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, f.Namespace+" ("+f.Message+")")
	}
	return strings.Join(parts, "; ")
}

// wasReady reports whether the stored status is Ready for the current
// generation.
func wasReady(cps *v1alpha1.ClusterPullSecret) bool {
	ready := meta.FindStatusCondition(cps.Status.Conditions, v1alpha1.ConditionReady)
	return cps.Status.ObservedGeneration == cps.Generation && ready != nil &&
		ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == cps.Generation
}

type summary struct {
	matched, ready, attached, retiringCount int
	reasons                                 map[string]int
	failing                                 []v1alpha1.NamespaceFailure
	retiring                                []v1alpha1.RetiringCopy
	stuck                                   []v1alpha1.StuckPod
}

// summarize folds the namespaces' states. A matched namespace with no
// report is computed from the caches when the stored status says Ready
// (after a restart, so that a converged fleet's status stays as it is);
// during a rollout it is simply not ready yet.
func (r *cpsReconciler) summarize(ctx context.Context, d decodedCPS, namespaces *namespaceStore, wasReady bool) (summary, error) {
	name := d.plan.Name
	sum := summary{reasons: map[string]int{}}
	// Only the first maxListed of each list are shown: holding every
	// failing namespace and stuck Pod of a large fleet in its cold start
	// to sort them was most of what the controller held in flight.
	failing := firstn.New(maxListed, func(a, b v1alpha1.NamespaceFailure) int { return cmp.Compare(a.Namespace, b.Namespace) })
	retiring := firstn.New(maxListed, func(a, b v1alpha1.RetiringCopy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Secret, b.Secret))
	})
	stuck := firstn.New(maxListed, func(a, b v1alpha1.StuckPod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod))
	})
	err := namespaces.each(func(ns *corev1.Namespace) {
		if !d.sel.Namespace(ns) {
			return
		}
		sum.matched++
		st, known := r.board.get(ns.Name, name)
		if !known || !st.Selected {
			st = planner.State{Reason: v1alpha1.ReasonProgressing, Message: "not reconciled yet"}
			if wasReady {
				if s, err := r.read.snapshot(ctx, ns); err == nil {
					st = planner.Compute(s).States[name]
					r.board.put(ns.Name, name, st)
				}
			}
		}
		sum.attached += st.Attached
		if st.Ready {
			sum.ready++
			return
		}
		sum.reasons[st.Reason]++
		failing.Add(v1alpha1.NamespaceFailure{Namespace: ns.Name, Reason: st.Reason, Message: st.Message})
	})
	if err != nil {
		return summary{}, err
	}
	r.board.each(name, func(ns string, st planner.State) {
		for _, k := range st.Retiring {
			sum.retiringCount++
			held := k.HeldBy
			if len(held) > 5 {
				held = append(slices.Clone(held[:5]), fmt.Sprintf("and %d more", len(k.HeldBy)-5))
			}
			retiring.Add(v1alpha1.RetiringCopy{Namespace: ns, Secret: k.Secret, HeldBy: held})
		}
		for _, s := range st.Stuck {
			stuck.Add(v1alpha1.StuckPod{Namespace: ns, Pod: s.Pod, Reason: s.Why})
		}
	})
	sum.failing, sum.retiring, sum.stuck = failing.Sorted(), retiring.Sorted(), stuck.Sorted()
	return sum, nil
}

// writeStatus writes the status when it changed, at most once per
// statusInterval, with an Event when the Ready reason changes.
func (r *cpsReconciler) writeStatus(ctx context.Context, u *unstructured.Unstructured, d decodedCPS, status *v1alpha1.ClusterPullSecretStatus) (ctrl.Result, error) {
	var stored v1alpha1.ClusterPullSecretStatus
	if d.obj != nil {
		stored = d.obj.Status
	}
	if equality.Semantic.DeepEqual(*status, stored) {
		return ctrl.Result{}, nil
	}
	if wait := r.untilNextWrite(u.GetName()); wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	next := meta.FindStatusCondition(status.Conditions, v1alpha1.ConditionReady)
	if prev := meta.FindStatusCondition(stored.Conditions, v1alpha1.ConditionReady); (prev == nil || prev.Reason != next.Reason) && next.Reason != v1alpha1.ReasonProgressing {
		eventType := corev1.EventTypeNormal
		if next.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		r.events.emit(eventTarget(u, d), nil, eventType, next.Reason, "%s", next.Message)
	}
	// A merge patch from the stored object, so that fields that became
	// empty are removed, not left as they were.
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(status)
	if err != nil {
		return ctrl.Result{}, err
	}
	obj := u.DeepCopy()
	obj.Object["status"] = content
	if err := r.client.Status().Patch(ctx, obj, client.MergeFrom(u)); err != nil {
		return ctrl.Result{}, fmt.Errorf("update status of ClusterPullSecret %s: %w", u.GetName(), err)
	}
	r.mu.Lock()
	r.lastWrite[u.GetName()] = time.Now()
	r.mu.Unlock()
	return ctrl.Result{}, nil
}

// eventTarget is the object Events are about; an object that does not
// decode still has a name and UID.
func eventTarget(u *unstructured.Unstructured, d decodedCPS) *v1alpha1.ClusterPullSecret {
	if d.obj != nil {
		return d.obj
	}
	return &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: u.GetName(), UID: u.GetUID()}}
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

// finalize removes the finalizer once nothing of the ClusterPullSecret is
// left but what is already going away (copies being deleted, objects in
// terminating namespaces or being deleted themselves); until then a
// condition says what it waits for, and since when.
func (r *cpsReconciler) finalize(ctx context.Context, u *unstructured.Unstructured, d decodedCPS) (ctrl.Result, error) {
	if !slices.Contains(u.GetFinalizers(), v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if r.read.keyProblem() != "" {
		// Without the key no copy is proven: waiting, never orphaning them.
		return ctrl.Result{RequeueAfter: deletionRecheck}, nil
	}
	left, err := r.leftovers(ctx, u.GetName(), u.GetUID())
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(left) == 0 {
		if err := r.refresher.forget(ctx, u.GetName()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.setFinalizer(ctx, u, false); err != nil {
			return ctrl.Result{}, err
		}
		r.forget(u.GetName())
		return ctrl.Result{}, nil
	}
	var status v1alpha1.ClusterPullSecretStatus
	if d.obj != nil {
		status = *d.obj.Status.DeepCopy()
	}
	shown := left[:min(len(left), 10)]
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonDeleting, ObservedGeneration: u.GetGeneration(),
		Message: fmt.Sprintf("deleting since %s: waiting for %d copies and attachments to be removed: %s",
			u.GetDeletionTimestamp().UTC().Format(time.RFC3339), len(left), strings.Join(shown, ", ")),
	})
	if _, err := r.writeStatus(ctx, u, d, &status); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: deletionRecheck}, nil
}

// leftovers lists the copies and attachments of a ClusterPullSecret that
// its deletion still has to remove.
func (r *cpsReconciler) leftovers(ctx context.Context, name string, uid types.UID) ([]string, error) {
	key := r.read.ownershipKey()
	gone := map[string]bool{}
	if err := r.read.namespaces.each(func(ns *corev1.Namespace) {
		if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
			gone[ns.Name] = true
		}
	}); err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var left []string
	if err := r.read.copies.Each(func(c *copyRecord) bool {
		owner, _ := c.labels.Get(v1alpha1.OwnerLabel)
		ownerUID, _ := c.annotations.Get(v1alpha1.OwnerUIDAnnotation)
		if owner == name && !gone[c.namespace] && !c.deleting && ownerUID == string(uid) &&
			ownership.CopyIsProven(key, c.namespace, c.name, c.labels.Map(), c.annotations.Map()) {
			left = append(left, "Secret "+c.namespace+"/"+c.name)
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("list copies of %s: %w", name, err)
	}
	var sas []*corev1.ServiceAccount
	if err := r.read.accounts.Each(func(a *accounts.Account) bool {
		if rec, ok := a.Annotation(v1alpha1.AttachedAnnotation); ok && strings.Contains(rec, name) && !gone[a.Namespace] && !a.Deleting {
			sas = append(sas, a.Object())
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("list ServiceAccounts attached by %s: %w", name, err)
	}
	for _, sa := range sas {
		rec, err := ownership.ReadRecord(sa, key)
		if err != nil {
			continue // not ours to clean: left alone, and not waited for
		}
		for secret, by := range rec {
			if by == name && slices.ContainsFunc(sa.ImagePullSecrets, func(ref corev1.LocalObjectReference) bool { return ref.Name == secret }) {
				left = append(left, "ServiceAccount "+sa.Namespace+"/"+sa.Name)
			}
		}
	}
	slices.Sort(left)
	return left, nil
}

// observeCredential fills status.credential and the CredentialRefreshed
// condition of a provider source, and returns why the credential in the
// copies has expired, if it has.
func (r *cpsReconciler) observeCredential(ctx context.Context, cps *v1alpha1.ClusterPullSecret, status *v1alpha1.ClusterPullSecretStatus) string {
	if cps.Spec.Source.Provider == nil {
		status.Credential = nil
		meta.RemoveStatusCondition(&status.Conditions, v1alpha1.ConditionCredentialRefreshed)
		return ""
	}
	r.refresher.wake()
	cs := r.refresher.status(ctx, cps)
	status.Credential = cs
	cond := metav1.Condition{Type: v1alpha1.ConditionCredentialRefreshed, ObservedGeneration: cps.Generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonRefreshed}
	cfg, cfgErr := r.providers.get()
	_, refused, refusal := resolveProvider(cfg, cfgErr, r.providers.path, cps.Spec.Source.Provider)
	switch {
	case refused != "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, refused, refusal+"; the plugin is not run"
	case cs.Failures > 0:
		cond.Status, cond.Reason = metav1.ConditionFalse, v1alpha1.ReasonRefreshFailed
		times := "once"
		if cs.Failures > 1 {
			times = fmt.Sprintf("%d times in a row", cs.Failures)
		}
		cond.Message = fmt.Sprintf("plugin %s failed %s: %s; the credential in place is kept", cps.Spec.Source.Provider.Name, times, cs.LastError)
		if cs.ExpiresAt != nil {
			cond.Message += "; it expires at " + cs.ExpiresAt.UTC().Format(time.RFC3339)
		}
	case cs.ObtainedAt == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonProgressing, "the plugin has not answered yet"
	default:
		cond.Message = fmt.Sprintf("plugin %s answered at %s; the credential expires at %s", cps.Spec.Source.Provider.Name,
			cs.ObtainedAt.UTC().Format(time.RFC3339), cs.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if cfgErr != nil && cfg != nil {
		cond.Message += fmt.Sprintf("; the controller's CredentialProviderConfig no longer loads (%v): the last good one is in use", cfgErr)
	}
	meta.SetStatusCondition(&status.Conditions, cond)
	if cs.ExpiresAt != nil && !cs.ExpiresAt.After(time.Now()) {
		msg := "the credential in the copies expired at " + cs.ExpiresAt.UTC().Format(time.RFC3339)
		if cs.LastError != "" {
			msg += " and the plugin fails: " + cs.LastError
		}
		return msg
	}
	return ""
}
