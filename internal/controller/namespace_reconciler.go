package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// maxPlans bounds the plans of one reconcile: each replan follows a write
// that failed in a way the next plan accounts for (a name found taken).
const maxPlans = 4

// namespaceReconciler makes every write in one namespace, for all
// ClusterPullSecrets: read, plan, write, report.
type namespaceReconciler struct {
	client client.Client
	read   *reader
	write  *writer
	board  *board
	notify func(cps string)
	events *eventSink
}

func (r *namespaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ns corev1.Namespace
	if err := r.client.Get(ctx, types.NamespacedName{Name: req.Name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			r.read.conflicts.forget(req.Name, "")
			for _, cps := range r.board.dropNamespace(req.Name) {
				r.notify(cps)
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	key := r.read.ownershipKey()
	s, err := r.read.snapshot(ctx, &ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	var (
		p     planner.Plan
		retry time.Duration
		out   outcome
	)
	for range maxPlans {
		p = planner.Compute(s)
		if p.Empty() {
			break
		}
		out = r.write.apply(ctx, ns.Name, key, p)
		retry = minPositive(retry, out.retry)
		s = planner.After(s, out.done)
		if !out.learned {
			break
		}
		s.Blocked, _ = r.read.conflicts.blocked(ns.Name)
	}
	// Report the namespace as the writes left it.
	final := planner.Compute(s)
	for cps, msg := range out.failed {
		st := final.States[cps]
		st.Ready, st.Reason, st.Message = false, v1alpha1.ReasonWriteFailed, msg
		final.States[cps] = st
	}
	if !s.UsageUnknown {
		// A plan made before Pods and templates are listed knows no stuck
		// Pod nor what holds an old copy: it is not reported; every
		// namespace is planned again once they are.
		r.report(ns.Name, final.States)
	}
	if _, next := r.read.conflicts.blocked(ns.Name); next > 0 {
		retry = minPositive(retry, next)
	}
	if out.err != nil {
		return ctrl.Result{}, fmt.Errorf("namespace %s: %w", ns.Name, out.err)
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

// report publishes the namespace's states and wakes the ClusterPullSecret
// reconciler for those that changed; conflicts and stuck Pods also become
// Events, once.
func (r *namespaceReconciler) report(ns string, states map[string]planner.State) {
	for _, cps := range r.board.set(ns, states) {
		r.notify(cps)
	}
	for name, st := range states {
		if st.Reason != v1alpha1.ReasonConflict && len(st.Stuck) == 0 {
			continue
		}
		d, _, err := r.read.cps.get(context.Background(), name)
		if err != nil || d.obj == nil {
			continue
		}
		obj := d.obj
		if st.Reason == v1alpha1.ReasonConflict {
			r.events.once(obj, nil, "conflict/"+ns+"/"+st.Message, time.Hour, corev1.EventTypeWarning, v1alpha1.ReasonConflict,
				"namespace %s: %s", ns, st.Message)
		}
		for _, s := range st.Stuck {
			r.events.once(obj, nil, "stuck/"+ns+"/"+s.Pod+"/"+s.Why, 24*time.Hour, corev1.EventTypeWarning, v1alpha1.ReasonPodStuck,
				"Pod %s/%s fails to pull and is not restarted: %s", ns, s.Pod, s.Why)
		}
	}
}
