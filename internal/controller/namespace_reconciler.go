package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/planner"
)

// maxPlans bounds the plans of one reconcile. A plan is made again at once
// only when its writes stopped on something the next plan accounts for: a
// name found taken (learned), or a ServiceAccount edit applied to another
// version than planned on, or skipped because the object was replaced or
// deleted (the snapshot is read again). A plan that deletes copies or Pods
// can leave work for the next one (docs/controller.md, "Fixpoint"): the
// watch events of its deletions bring it, in a later reconcile.
const maxPlans = 4

// namespaceReconciler makes every write in one namespace, for all
// ClusterPullSecrets: read, plan, write, report.
type namespaceReconciler struct {
	client    client.Client
	apiReader client.Reader // ServiceAccounts with their managed fields, in a fight
	read      *reader
	write     *writer
	board     *board
	notify    func(cps string)
	events    *eventSink
	// enqueue plans a namespace again.
	enqueue func(ns string)
}

func (r *namespaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if req.Name == everything {
		return ctrl.Result{}, r.wakeAll(ctx)
	}
	var ns corev1.Namespace
	if err := r.client.Get(ctx, types.NamespacedName{Name: req.Name}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			r.read.conflicts.forget(req.Name, "")
			r.read.own.forgetNamespace(req.Name)
			for _, cps := range r.board.dropNamespace(req.Name) {
				r.notify(cps)
			}
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	key := r.read.ownershipKey()
	if key == nil {
		// Nothing is written without the key: the namespace is planned
		// again when it is back (the keyring wakes everything), and the
		// ClusterPullSecrets' status says why meanwhile.
		return ctrl.Result{}, nil
	}
	s, err := r.read.snapshot(ctx, &ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	var (
		p     planner.Plan
		retry time.Duration
		out   outcome
	)
	failed := map[string]string{}
	for range maxPlans {
		p = planner.Compute(s)
		if p.Empty() {
			break
		}
		out = r.write.apply(ctx, s, key, p)
		retry = minPositive(retry, out.retry)
		maps.Copy(failed, out.failed)
		switch {
		case out.stale:
			// Plan on what the caches (and our own writes over them) show
			// now.
			if s, err = r.read.snapshot(ctx, &ns); err != nil {
				return ctrl.Result{}, err
			}
			continue
		case out.learned:
			s = planner.After(s, out.done)
			s.Blocked, _ = r.read.conflicts.blocked(ns.Name)
			continue
		}
		s = planner.After(s, out.done)
		break
	}
	// Report the namespace as the writes left it.
	final := planner.Compute(s)
	// A wait the plan asks for is the reconcile's own: a delayed enqueue
	// from elsewhere is dropped when the namespace is queued sooner.
	retry = minPositive(retry, final.RecheckAfter)
	r.explainContests(ctx, ns.Name, final.States)
	for cps, msg := range failed {
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

// wakeAll plans every namespace and reports every ClusterPullSecret again.
// An error is the reconcile's: logged, counted and retried with backoff.
func (r *namespaceReconciler) wakeAll(ctx context.Context) error {
	// The names, read in the cache's own Namespaces: a NamespaceList
	// through the client would copy all of them (12 MB at 10,000
	// namespaces) for every source change.
	var names []string
	if err := r.read.namespaces.each(func(ns *corev1.Namespace) { names = append(names, ns.Name) }); err != nil {
		return fmt.Errorf("read namespaces to plan them again: %w", err)
	}
	all, err := r.read.cps.list(ctx)
	if err != nil {
		return fmt.Errorf("list ClusterPullSecrets to report them again: %w", err)
	}
	for _, ns := range names {
		r.enqueue(ns)
	}
	for _, c := range all {
		r.notify(c.plan.Name)
	}
	return nil
}

// report publishes the namespace's states and wakes the ClusterPullSecret
// reconciler for those that changed; conflicts and stuck Pods also become
// Events, once.
func (r *namespaceReconciler) report(ns string, states map[string]planner.State) {
	for _, cps := range r.board.set(ns, states) {
		r.notify(cps)
	}
	for name, st := range states {
		if st.Reason != v1alpha1.ReasonConflict && len(st.Stuck) == 0 && len(st.Contested) == 0 {
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
		for _, c := range st.Contested {
			// One series per ServiceAccount fought over, at most every ten
			// minutes: the status says the rest.
			r.events.once(obj, nil, "contested/"+ns+"/"+c.ServiceAccount, 10*time.Minute, corev1.EventTypeWarning, v1alpha1.ReasonContested,
				"namespace %s: %s", ns, st.Message)
		}
		for _, s := range st.Stuck {
			r.events.once(obj, nil, "stuck/"+ns+"/"+s.Pod+"/"+s.Why, 24*time.Hour, corev1.EventTypeWarning, v1alpha1.ReasonPodStuck,
				"Pod %s/%s fails to pull and is not restarted: %s", ns, s.Pod, s.Why)
		}
	}
}

// ownManager is the field manager of the controller's writes (its user
// agent).
const ownManager = "pullsecrets-controller"

// explainContests names, in the state of a fight, who else writes the
// list (the field managers that own imagePullSecrets, from managedFields,
// read live: the cache drops them) and how to end it.
func (r *namespaceReconciler) explainContests(ctx context.Context, ns string, states map[string]planner.State) {
	for name, st := range states {
		if len(st.Contested) == 0 {
			continue
		}
		var managers []string
		for _, c := range st.Contested {
			for _, m := range r.listManagers(ctx, ns, c.ServiceAccount) {
				if !slices.Contains(managers, m) {
					managers = append(managers, m)
				}
			}
		}
		who := "another writer"
		if len(managers) > 0 {
			who = "field manager " + strings.Join(managers, ", ")
		}
		st.Message = fmt.Sprintf("%s (%s owns imagePullSecrets, an atomic list: whoever applies it owns all of it); pullsecrets backs off. "+
			"End it: Argo CD ignoreDifferences on /imagePullSecrets with syncOptions RespectIgnoreDifferences=true, Flux: leave imagePullSecrets out of the rendered ServiceAccount, "+
			"or spec.attachTo: Pods (docs/gitops.md)", st.Message, who)
		states[name] = st
	}
}

// listManagers returns the field managers, other than the controller, that
// own imagePullSecrets on a ServiceAccount.
func (r *namespaceReconciler) listManagers(ctx context.Context, ns, name string) []string {
	var sa corev1.ServiceAccount
	if err := r.apiReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sa); err != nil {
		return nil
	}
	var out []string
	for _, m := range sa.ManagedFields {
		if m.FieldsV1 == nil || m.Manager == ownManager || !strings.Contains(m.FieldsV1.GetRawString(), `"f:imagePullSecrets"`) {
			continue
		}
		if !slices.Contains(out, m.Manager) {
			out = append(out, m.Manager)
		}
	}
	slices.Sort(out)
	return out
}
