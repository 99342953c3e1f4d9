package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/pullfailure"
	"github.com/pullsecrets/pullsecrets/internal/selection"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// conflictRetry is how often a namespace with a conflicting Secret is
// retried: we cannot watch Secrets that are not ours, so this is the only
// way to notice that the conflict went away.
const conflictRetry = time.Minute

// namespaceReconciler does every write in one namespace, for all
// ClusterPullSecrets.
type namespaceReconciler struct {
	client    client.Client // reads from the manager's caches
	apiReader client.Reader // live reads, only to retry a conflicting ServiceAccount update
	sources   *sources
	copies    *copies
	board     *board
	memo      *memo
	recorder  events.EventRecorder
	restarts  *rate.Limiter
	notify    func(cps string)
}

// plan is what one ClusterPullSecret wants in the namespace.
type plan struct {
	cps *v1alpha1.ClusterPullSecret
	sel *selection.Selector
	// name is the copy's name (spec.secretName or the object's name).
	name string
	src  sourceState
	// matched: the namespace is selected (and the object is not deleting).
	matched bool
	// frozen: matched, but the source is missing or invalid, or the spec is
	// invalid. Nothing of this ClusterPullSecret is touched in the namespace.
	frozen bool
	// active: matched and not frozen: copy and attachments are enforced.
	active bool

	copyReady bool
	state     nsState
	keyring   *credentials.Keyring
}

// matchesImage reports whether the copied credential is one the kubelet
// would use for the image: restarting a Pod whose pull fails for another
// registry would not help it.
func (p *plan) matchesImage(image string) bool {
	if p.keyring == nil {
		p.keyring = credentials.NewKeyring([]credentials.Secret{{
			Namespace: p.src.Secret.Namespace, Name: p.src.Secret.Name, Type: string(p.src.Secret.Type), Data: p.src.Secret.Data,
		}})
	}
	m, err := p.keyring.Lookup(image)
	return err == nil && len(m.Credentials) > 0
}

func secretNameOf(cps *v1alpha1.ClusterPullSecret) string {
	if cps.Spec.SecretName != "" {
		return cps.Spec.SecretName
	}
	return cps.Name
}

func (r *namespaceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	nsName := req.Name
	var ns corev1.Namespace
	if err := r.client.Get(ctx, types.NamespacedName{Name: nsName}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			r.forgetNamespace(ctx, nsName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}

	plans, err := r.plans(ctx, &ns)
	if err != nil {
		return ctrl.Result{}, err
	}
	existing, err := r.existingCopies(ctx, nsName)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(plans) == 0 && len(existing) == 0 {
		return ctrl.Result{}, nil
	}
	if ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating {
		// Nothing can be created in a terminating namespace and everything
		// in it goes away: not an error, nothing to do.
		r.forgetNamespace(ctx, nsName)
		return ctrl.Result{}, nil
	}

	var errs []error
	requeue := time.Duration(0)
	// 1. New and updated copies first: a name is attached only once its
	// copy exists.
	for _, p := range plans {
		if p.active {
			if err := r.ensureCopy(ctx, &ns, p, existing); err != nil {
				errs = append(errs, err)
			}
			if p.state.Reason == v1alpha1.ReasonConflict {
				requeue = conflictRetry
			}
		}
	}
	// 2. Attach new names, detach old ones, one update per ServiceAccount.
	sas, err := r.reconcileServiceAccounts(ctx, nsName, plans)
	if err != nil {
		errs = append(errs, err)
	}
	// 3. Retire copies nothing wants any more.
	if err := r.retireCopies(ctx, nsName, plans, existing, sas); err != nil {
		errs = append(errs, err)
	}
	// 4. Replace Pods that failed to pull before the fix.
	if d, err := r.restartPods(ctx, nsName, plans, sas); err != nil {
		errs = append(errs, err)
	} else if d > 0 && (requeue == 0 || d < requeue) {
		requeue = d
	}

	r.report(nsName, plans, sas)
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// plans builds one plan per ClusterPullSecret, oldest first: when two claim
// the same secret name in a namespace, the older one keeps it.
func (r *namespaceReconciler) plans(ctx context.Context, ns *corev1.Namespace) ([]*plan, error) {
	var list v1alpha1.ClusterPullSecretList
	if err := r.client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("list ClusterPullSecrets: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b v1alpha1.ClusterPullSecret) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	claimed := map[string]string{}
	plans := make([]*plan, 0, len(list.Items))
	for i := range list.Items {
		cps := &list.Items[i]
		p := &plan{cps: cps, name: secretNameOf(cps)}
		plans = append(plans, p)
		if cps.DeletionTimestamp != nil {
			continue
		}
		sel, err := selection.New(&cps.Spec)
		if err != nil {
			// The ClusterPullSecret reconciler reports it; leave the
			// namespace as it is.
			p.matched, p.frozen = true, true
			p.state = nsState{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
			continue
		}
		p.sel = sel
		if !sel.Namespace(ns) {
			continue
		}
		p.matched = true
		if p.src, err = r.sources.get(ctx, cps); err != nil {
			return nil, err
		}
		if !p.src.ok() {
			p.frozen = true
			p.state = nsState{Reason: p.src.Reason, Message: p.src.Message}
			continue
		}
		if owner, ok := claimed[p.name]; ok {
			p.state = nsState{Reason: v1alpha1.ReasonConflict, Message: fmt.Sprintf(
				"ClusterPullSecret %s, created earlier, already manages Secret %s in this namespace", owner, p.name)}
			continue
		}
		claimed[p.name] = cps.Name
		p.active = true
	}
	return plans, nil
}

// existingCopies lists our copies in the namespace from the metadata cache,
// corrected by our recent writes.
func (r *namespaceReconciler) existingCopies(ctx context.Context, ns string) (map[string]*copyMeta, error) {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.client.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue}); err != nil {
		return nil, fmt.Errorf("list Secret copies in %s: %w", ns, err)
	}
	out := map[string]*copyMeta{}
	for i := range list.Items {
		m := copyMetaFrom(&list.Items[i])
		if m = r.copies.log.copy(key(&list.Items[i]), m); m != nil {
			out[m.Name] = m
		}
	}
	return out, nil
}

func (r *namespaceReconciler) ensureCopy(ctx context.Context, ns *corev1.Namespace, p *plan, existing map[string]*copyMeta) error {
	cur := existing[p.name]
	if cur == nil {
		// Not in the cache: maybe we just created it.
		cur = r.copies.log.copy(types.NamespacedName{Namespace: ns.Name, Name: p.name}, nil)
	}
	desired := desiredCopy(ns.Name, p.name, p.cps.Name, p.src)
	var err error
	switch {
	case cur != nil && cur.Owner != p.cps.Name:
		err = fmt.Errorf("%w (it belongs to ClusterPullSecret %s)", errForeignSecret, cur.Owner)
	case cur == nil:
		cur, err = r.copies.create(ctx, desired)
	case cur.Hash != p.src.Hash:
		cur, err = r.copies.update(ctx, cur, desired)
	}
	if errors.Is(err, errForeignSecret) {
		p.state = nsState{Reason: v1alpha1.ReasonConflict, Message: fmt.Sprintf("Secret %s/%s: %v", ns.Name, p.name, err)}
		if r.memo.first("conflict/"+p.cps.Name+"/"+ns.Name, time.Hour, time.Now()) {
			r.recorder.Eventf(p.cps, nil, corev1.EventTypeWarning, v1alpha1.ReasonConflict, "CopySecret",
				"Secret %s/%s exists and was not created by this ClusterPullSecret; it is left alone", ns.Name, p.name)
		}
		return nil
	}
	if err != nil {
		p.state = nsState{Reason: v1alpha1.ReasonWriteFailed, Message: err.Error()}
		return err
	}
	r.memo.forget("conflict/" + p.cps.Name + "/" + ns.Name)
	existing[p.name] = cur
	p.copyReady = true
	return nil
}

// reconcileServiceAccounts attaches and detaches names, at most one write
// per ServiceAccount, and returns the ServiceAccounts as they now are.
func (r *namespaceReconciler) reconcileServiceAccounts(ctx context.Context, ns string, plans []*plan) (map[string]*corev1.ServiceAccount, error) {
	var list corev1.ServiceAccountList
	if err := r.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("list ServiceAccounts in %s: %w", ns, err)
	}
	byCPS := map[string]*plan{}
	for _, p := range plans {
		byCPS[p.cps.Name] = p
	}
	store := serviceaccount.Store(storeAdapter{client: r.client, reader: r.apiReader})
	out := map[string]*corev1.ServiceAccount{}
	var errs []error
	for i := range list.Items {
		sa := r.copies.log.serviceAccount(&list.Items[i])
		out[sa.Name] = sa
		if sa.DeletionTimestamp != nil {
			continue
		}
		if _, err := serviceaccount.ReadRecord(sa); err != nil {
			// Never overwrite the only trace of what we attached.
			for _, p := range plans {
				if p.active && p.sel.ServiceAccount(sa) {
					p.state = nsState{Reason: v1alpha1.ReasonWriteFailed, Message: err.Error()}
				}
			}
			continue
		}
		updated, wrote, err := serviceaccount.Update(ctx, store, sa, func(sa *corev1.ServiceAccount) (bool, error) {
			return mergeServiceAccount(sa, plans, byCPS)
		})
		switch {
		case serviceaccount.IsGone(err):
		case err != nil:
			errs = append(errs, err)
			for _, p := range plans {
				if p.active && p.sel.ServiceAccount(sa) {
					p.state = nsState{Reason: v1alpha1.ReasonWriteFailed, Message: err.Error()}
				}
			}
		case wrote:
			r.copies.log.recordServiceAccount(sa.ResourceVersion, updated)
			out[sa.Name] = updated
		}
	}
	return out, errors.Join(errs...)
}

// mergeServiceAccount is the whole attach/detach policy for one
// ServiceAccount. Names are only removed when our record says we added
// them, and an old name only once the name replacing it is attached.
func mergeServiceAccount(sa *corev1.ServiceAccount, plans []*plan, byCPS map[string]*plan) (bool, error) {
	rec, err := serviceaccount.ReadRecord(sa)
	if err != nil {
		return false, err
	}
	before := cloneRecord(rec)
	changed := false
	for _, p := range plans {
		if !p.active || !p.copyReady || !p.sel.ServiceAccount(sa) {
			continue
		}
		if serviceaccount.Attach(sa, p.name) {
			rec[p.name] = p.cps.Name
			changed = true
		}
	}
	for name, owner := range rec {
		p := byCPS[owner]
		switch {
		case p != nil && p.frozen:
			continue // leave everything of a broken source as it is
		case p != nil && p.active && p.name == name && p.sel.ServiceAccount(sa):
			continue // still wanted
		case p != nil && p.active && p.name != name && p.sel.ServiceAccount(sa) && !serviceaccount.Has(sa, p.name):
			continue // renamed, but the new name is not attached yet
		}
		serviceaccount.Detach(sa, name)
		delete(rec, name)
		changed = true
	}
	if !changed && before.Equal(rec) {
		return false, nil
	}
	serviceaccount.WriteRecord(sa, rec)
	return true, nil
}

func cloneRecord(r serviceaccount.Record) serviceaccount.Record {
	out := serviceaccount.Record{}
	for k, v := range r {
		out[k] = v
	}
	return out
}

// retireCopies deletes our copies that no ClusterPullSecret wants in the
// namespace any more, once no Pod lists them: a Pod's list never changes,
// and a restarted container may need to pull again.
func (r *namespaceReconciler) retireCopies(ctx context.Context, ns string, plans []*plan, existing map[string]*copyMeta, sas map[string]*corev1.ServiceAccount) error {
	byCPS := map[string]*plan{}
	for _, p := range plans {
		byCPS[p.cps.Name] = p
	}
	var pods *corev1.PodList
	var errs []error
	for name, c := range existing {
		p := byCPS[c.Owner]
		if p != nil && (p.frozen || (p.active && p.name == name)) {
			continue
		}
		if attachedByUs(sas, name, c.Owner) {
			continue // detaching failed; try again later
		}
		deleting := p != nil && p.cps.DeletionTimestamp != nil
		if !deleting {
			if pods == nil {
				pods = &corev1.PodList{}
				if err := r.client.List(ctx, pods, client.InNamespace(ns)); err != nil {
					return fmt.Errorf("list Pods in %s: %w", ns, err)
				}
			}
			if users := podsListing(pods, name); len(users) > 0 {
				if p != nil {
					p.state.Pending++
				}
				continue
			}
		}
		if err := r.copies.delete(ctx, c); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(existing, name)
		if p != nil && !deleting {
			r.recorder.Eventf(p.cps, nil, corev1.EventTypeNormal, v1alpha1.ReasonCopyRetired, "DeleteSecret",
				"deleted Secret %s/%s: no ClusterPullSecret wants it and no Pod lists it", ns, name)
		}
	}
	return errors.Join(errs...)
}

func attachedByUs(sas map[string]*corev1.ServiceAccount, name, owner string) bool {
	for _, sa := range sas {
		if rec, err := serviceaccount.ReadRecord(sa); err == nil && rec[name] == owner && serviceaccount.Has(sa, name) {
			return true
		}
	}
	return false
}

// podsListing returns the Pods that may still pull with the named secret.
// Finished Pods never start a container again.
func podsListing(pods *corev1.PodList, name string) []string {
	var out []string
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if pullfailure.Lists(pod, name) {
			out = append(out, pod.Name)
		}
	}
	return out
}

// restartPods deletes Pods stuck on a pull that lack a secret their
// ServiceAccount now carries, when their owner will recreate them (the
// replacement gets the ServiceAccount's list from admission). It returns a
// delay when the rate limit postponed some.
func (r *namespaceReconciler) restartPods(ctx context.Context, ns string, plans []*plan, sas map[string]*corev1.ServiceAccount) (time.Duration, error) {
	var want []*plan
	for _, p := range plans {
		if p.active {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return 0, nil
	}
	var pods corev1.PodList
	// Read-only: the cached Pods are not copied.
	if err := r.client.List(ctx, &pods, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return 0, fmt.Errorf("list Pods in %s: %w", ns, err)
	}
	var delay time.Duration
	var errs []error
	for i := range pods.Items {
		pod := &pods.Items[i]
		if !pullfailure.IsStuck(pod) {
			continue
		}
		sa := sas[pullfailure.ServiceAccountName(pod)]
		if sa == nil {
			continue
		}
		for _, p := range want {
			if !serviceaccount.Has(sa, p.name) || pullfailure.Lists(pod, p.name) || !stuckOn(p, pod) {
				continue
			}
			d, err := r.restartPod(ctx, p, pod, sa)
			if err != nil {
				errs = append(errs, err)
			}
			if d > 0 {
				delay = d
			}
			break
		}
	}
	return delay, errors.Join(errs...)
}

// stuckOn reports whether one of the Pod's failing images is one the plan's
// credential is for.
func stuckOn(p *plan, pod *corev1.Pod) bool {
	for _, c := range pullfailure.StuckContainers(pod) {
		if p.matchesImage(c.Image) {
			return true
		}
	}
	return false
}

func (r *namespaceReconciler) restartPod(ctx context.Context, p *plan, pod *corev1.Pod, sa *corev1.ServiceAccount) (time.Duration, error) {
	logger := log.FromContext(ctx)
	ref := pod.Namespace + "/" + pod.Name
	owner := pullfailure.Recreator(pod)
	// Admission copies the ServiceAccount's list only into Pods that have
	// none. A Pod listing a name its ServiceAccount lacks got that list from
	// its template, so its replacement would not get the secret either.
	for _, s := range pod.Spec.ImagePullSecrets {
		if !serviceaccount.Has(sa, s.Name) {
			if r.memo.first("stuck/"+string(pod.UID), 24*time.Hour, time.Now()) {
				r.recorder.Eventf(p.cps, nil, corev1.EventTypeWarning, v1alpha1.ReasonPodStuck, "RestartPod",
					"Pod %s fails to pull and lists its own imagePullSecrets, which hide those of ServiceAccount %s: add %s to its template",
					ref, sa.Name, p.name)
			}
			return 0, nil
		}
	}
	if p.cps.Spec.RestartPods != v1alpha1.RestartOnPullFailure || owner == nil {
		if r.memo.first("stuck/"+string(pod.UID), 24*time.Hour, time.Now()) {
			why := "restartPods is Never"
			if owner == nil {
				why = "it has no owner that would recreate it"
			}
			r.recorder.Eventf(p.cps, nil, corev1.EventTypeWarning, v1alpha1.ReasonPodStuck, "RestartPod",
				"Pod %s was created before ServiceAccount %s got %s and fails to pull; not restarted because %s: delete it to retry",
				ref, sa.Name, p.name, why)
		}
		return 0, nil
	}
	if !r.restarts.Allow() {
		return time.Second, nil
	}
	uid := pod.UID
	err := r.client.Delete(ctx, pod, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("delete Pod %s: %w", ref, err)
	}
	logger.Info("restarted Pod stuck on an image pull", "pod", ref, "owner", owner.Kind+"/"+owner.Name, "secret", p.name)
	r.recorder.Eventf(p.cps, nil, corev1.EventTypeNormal, v1alpha1.ReasonPodRestarted, "RestartPod",
		"deleted Pod %s, stuck on an image pull and created before ServiceAccount %s got %s, so that %s %s recreates it with the secret",
		ref, sa.Name, p.name, owner.Kind, owner.Name)
	return 0, nil
}

// report publishes each ClusterPullSecret's state in the namespace.
func (r *namespaceReconciler) report(ns string, plans []*plan, sas map[string]*corev1.ServiceAccount) {
	for _, p := range plans {
		st := p.state
		switch {
		case p.active && st.Reason == "":
			st.Attached, st.Ready = 0, true
			for _, sa := range sas {
				if sa.DeletionTimestamp != nil || !p.sel.ServiceAccount(sa) {
					continue
				}
				if serviceaccount.Has(sa, p.name) {
					st.Attached++
				} else {
					st.Ready = false
				}
			}
			if !p.copyReady {
				st.Ready = false
			}
			if !st.Ready {
				st.Reason = v1alpha1.ReasonProgressing
			}
		case !p.matched && st.Pending == 0:
			if r.board.drop(p.cps.Name, ns) {
				r.notify(p.cps.Name)
			}
			continue
		}
		if r.board.set(p.cps.Name, ns, st) {
			r.notify(p.cps.Name)
		}
	}
}

func (r *namespaceReconciler) forgetNamespace(_ context.Context, ns string) {
	r.board.mu.Lock()
	var affected []string
	for cps, m := range r.board.byCPS {
		if _, ok := m[ns]; ok {
			delete(m, ns)
			affected = append(affected, cps)
		}
	}
	r.board.mu.Unlock()
	for _, cps := range affected {
		r.notify(cps)
	}
}

// storeAdapter lets package serviceaccount write through the
// controller-runtime client and re-read live on conflicts.
type storeAdapter struct {
	client client.Client
	reader client.Reader
}

func (s storeAdapter) Get(ctx context.Context, namespace, name string) (*corev1.ServiceAccount, error) {
	var sa corev1.ServiceAccount
	err := s.reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &sa)
	return &sa, err
}

func (s storeAdapter) Update(ctx context.Context, sa *corev1.ServiceAccount) (*corev1.ServiceAccount, error) {
	err := s.client.Update(ctx, sa)
	return sa, err
}
