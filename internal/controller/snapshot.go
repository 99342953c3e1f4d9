package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
	"github.com/pullsecrets/pullsecrets/internal/usage"
)

// copyMeta is what the planner's reader takes of a Secret wearing our
// labels: its metadata, its type, and a digest of its data. It comes from
// a copyRecord (copyRecord.meta): the copies' index's, or the overlay's of
// a write's response.
type copyMeta struct {
	Namespace, Name string
	UID             types.UID
	ResourceVersion string
	Labels          map[string]string
	Annotations     map[string]string
	Type            corev1.SecretType
	// Digest is dataHash of the type and data the Secret really holds.
	Digest   string
	Deleting bool
}

// copyDrift says what of a copy differs from what the controller wrote
// ("" when nothing): its data, or its marks, which a person or a restore
// may have edited (the admission policy keeps them from doing so, but the
// controller repairs without it too).
func copyDrift(m *copyMeta, sourceOf map[string]string) string {
	switch {
	case m.Annotations[v1alpha1.DataHashAnnotation] != m.Digest:
		return "its data was changed"
	case sourceOf[m.Labels[v1alpha1.OwnerLabel]] != "" && m.Annotations[v1alpha1.SourceAnnotation] != sourceOf[m.Labels[v1alpha1.OwnerLabel]]:
		return "it names another source"
	}
	return ""
}

// reader builds planner snapshots from the caches. Both reconcilers use it:
// the namespace reconciler to plan, the ClusterPullSecret reconciler to
// compute the state of namespaces it has no report of.
type reader struct {
	client client.Client // the manager's caches
	// namespaces reads the Namespaces of the manager's cache in place.
	namespaces *namespaceStore
	accounts   *accounts.Index
	copies     *copies
	cps        *cpsCache
	sources    *sources
	usage      *usage.Index
	overlay    *overlay
	conflicts  *conflicts
	fights     *reattachments
	policy     *injectionPolicy
	keys       *keyring
	own        *ownCopies
}

// ownershipKey is the ring the marks are proven with; nil while there is
// none (nothing is then written).
func (r *reader) ownershipKey() *ownership.Ring {
	ring, _, _ := r.keys.state()
	return ring
}

// keyProblem says why the controller holds no key ("" when it does).
func (r *reader) keyProblem() string { return r.keys.missing() }

// injection tells the planner which name the pod-injection policy gives
// new Pods for a ClusterPullSecret (status.injection, while the policy is
// installed; also through a switch back until it is rolled out), and
// whether it is the current name, published long enough ago for the API
// server to have read it.
func (r *reader) injection(pc *planner.ClusterPullSecret, obj *v1alpha1.ClusterPullSecret) {
	pc.AttachToPods = obj.Spec.AttachTo == v1alpha1.AttachToPods
	available, why := r.policy.state()
	if pc.AttachToPods && !available {
		pc.InjectionProblem = why
	}
	if inj := obj.Status.Injection; available && inj != nil {
		// What the policy adds to new Pods, whatever the mode: an old
		// copy it names is kept.
		pc.Injected = inj.SecretName
		if inj.SecretName == pc.SecretName && inj.Since != nil {
			pc.InjectingFrom = inj.Since.Add(injectionGrace)
		}
	}
}

// snapshot reads everything the planner needs of one namespace.
func (r *reader) snapshot(ctx context.Context, ns *corev1.Namespace) (planner.Snapshot, error) {
	key, adoptMarked, note := r.keys.state()
	s := planner.Snapshot{AdoptMarked: adoptMarked, UnprovenNote: note, Namespace: planner.Namespace{
		Name: ns.Name, Labels: ns.Labels, Annotations: ns.Annotations,
		Terminating: ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating,
	}}
	all, err := r.cps.list(ctx)
	if err != nil {
		return s, err
	}
	s.Now = time.Now()
	// The source each copy names: a copy naming another is rewritten.
	sourceOf := map[string]string{}
	for _, c := range all {
		pc := c.plan
		if !pc.Deleting && pc.Invalid == "" {
			src := r.sources.get(ctx, c.obj)
			pc.Source = src.Source
			if src.ok() {
				sourceOf[c.obj.Name] = src.Secret.Namespace + "/" + src.Secret.Name
			}
			r.injection(&pc, c.obj)
		}
		s.ClusterPullSecrets = append(s.ClusterPullSecrets, pc)
	}

	copies, err := copiesIn(r.copies, ns.Name)
	if err != nil {
		return s, fmt.Errorf("list copies in %s: %w", ns.Name, err)
	}
	seen := map[string]bool{}
	add := func(m *copyMeta) {
		if m == nil {
			return
		}
		seen[m.Name] = true
		hash := m.Digest
		if copyDrift(m, sourceOf) != "" {
			hash = "" // differs from every source: rewritten whole
		}
		proven, current := ownership.CopyProven(key, m.Namespace, m.Name, m.Labels, m.Annotations)
		k := planner.Copy{
			Name: m.Name, UID: string(m.UID), Owner: m.Labels[v1alpha1.OwnerLabel], OwnerUID: m.Annotations[v1alpha1.OwnerUIDAnnotation],
			Hash: hash, Type: string(m.Type), Deleting: m.Deleting,
			Proven: proven, Resign: proven && !current, Proof: m.Annotations[v1alpha1.ProofAnnotation],
		}
		switch own, ok := r.own.lookup(ns.Name, m.Name); {
		case proven && !m.Deleting:
			r.own.remember(ns.Name, m.Name, ownCopy{uid: m.UID, owner: k.Owner, ownerUID: k.OwnerUID})
		case proven:
		case ok && own.uid == m.UID && !m.Deleting:
			// Ours, with marks someone changed: written back whole.
			k.Owner, k.OwnerUID, k.Proven, k.Restore, k.Hash = own.owner, own.ownerUID, true, true, ""
		}
		s.Copies = append(s.Copies, k)
	}
	for _, m := range copies {
		add(r.overlay.copy(types.NamespacedName{Namespace: ns.Name, Name: m.Name}, m))
	}
	for _, name := range r.overlay.createdIn(ns.Name) {
		if !seen[name] {
			add(r.overlay.copy(types.NamespacedName{Namespace: ns.Name, Name: name}, nil))
		}
	}
	// What is remembered of copies no longer listed stays only for the
	// names ClusterPullSecrets want (a copy that lost the label it is
	// listed by is found when its create meets it); the rest were deleted.
	r.own.prune(ns.Name, func(name string) bool {
		return seen[name] || slices.ContainsFunc(s.ClusterPullSecrets, func(c planner.ClusterPullSecret) bool { return c.SecretName == name })
	})
	s.Blocked, _ = r.conflicts.blocked(ns.Name)

	sas, err := r.accounts.InNamespace(ns.Name)
	if err != nil {
		return s, fmt.Errorf("list ServiceAccounts in %s: %w", ns.Name, err)
	}
	for _, cached := range sas {
		sa := r.overlay.serviceAccount(cached)
		ps := planner.ServiceAccount{
			Name: sa.Name, UID: string(sa.UID), ResourceVersion: sa.ResourceVersion, Labels: sa.Labels, Annotations: sa.Annotations,
			Deleting: sa.DeletionTimestamp != nil, Reattached: r.fights.of(types.NamespacedName{Namespace: sa.Namespace, Name: sa.Name}),
		}
		for _, ref := range sa.ImagePullSecrets {
			ps.PullSecrets = append(ps.PullSecrets, ref.Name)
		}
		rec, current, err := ownership.ReadRecordSigned(sa, key)
		switch {
		case errors.Is(err, ownership.ErrRecordUnproven):
			// Its proof does not check (a restore, a lost key): the
			// planner adopts it if every entry is sound.
			ps.RecordProblem = err.Error()
			ps.Unverified, _ = serviceaccount.ReadRecord(sa)
		case err != nil:
			ps.RecordProblem = err.Error()
		default:
			ps.Record, ps.RecordResign = rec, !current
		}
		s.ServiceAccounts = append(s.ServiceAccounts, ps)
	}
	s.UsageUnknown = !r.usage.Synced()
	s.Pods = r.usage.Pods(ns.Name)
	s.Workloads = r.usage.Workloads(ns.Name)
	return s, nil
}
