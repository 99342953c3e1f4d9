package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/go-openapi/jsonpointer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/controller/podrestart"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// outcome is what making a plan's writes gave.
type outcome struct {
	// done holds the writes made, with the UIDs of created copies.
	done planner.Plan
	// learned: a create found its name taken; plan again.
	learned bool
	// stale: an edit was applied to another version of its ServiceAccount
	// than the one planned on, or found it replaced or gone; the rest of
	// the plan assumed the list the plan saw: read and plan again.
	stale bool
	// retry is when to come back: a conflict's backoff, or a Pod restart
	// postponed by the rate limit.
	retry time.Duration
	// failed maps ClusterPullSecrets to the write that failed for them.
	failed map[string]string
	err    error
}

// writer makes a plan's writes, in the plan's order, stopping at the first
// that fails: every later write may depend on it.
type writer struct {
	client client.Client
	reader client.Reader // live reads after a ServiceAccount update conflict
	// account reads what the index keeps of a ServiceAccount (package
	// accounts): only what the controller reads. Its Object is built only
	// where an edit needs one.
	account   func(ns, name string) (*accounts.Account, error)
	copies    *copies
	sources   *sources
	cps       *cpsCache
	overlay   *overlay
	conflicts *conflicts
	fights    *reattachments
	own       *ownCopies
	restarter *podrestart.Restarter
	events    *eventSink
	// intern is the copies' index's: the overlay keeps a write's record
	// until the watch shows it, which in a large cold start is most of
	// them at once, so they share the strings the index's records share.
	intern func(string) string
}

// record is what the overlay keeps of a copy the controller wrote.
func (w *writer) record(s *corev1.Secret) *copyRecord { return copyRecordFrom(s, w.intern) }

func (w *writer) apply(ctx context.Context, s planner.Snapshot, key *ownership.Ring, p planner.Plan) outcome {
	ns := s.Namespace.Name
	out := outcome{done: planner.Plan{States: p.States}, failed: map[string]string{}}
	byName := map[string]*v1alpha1.ClusterPullSecret{}
	all, err := w.cps.list(ctx)
	if err != nil {
		out.err = err
		return out
	}
	for _, c := range all {
		if c.obj != nil {
			byName[c.obj.Name] = c.obj
		}
	}
	fail := func(cps string, err error, data map[string][]byte) outcome {
		msg := err.Error()
		if data != nil {
			msg = credentials.Scrub(msg, data)
		}
		out.failed[cps] = msg
		out.err = errors.New(msg)
		return out
	}

	for _, c := range append(p.CreateCopies, p.UpdateCopies...) {
		obj := byName[c.Owner]
		if obj == nil {
			return fail(c.Owner, fmt.Errorf("ClusterPullSecret %s changed while planning", c.Owner), nil)
		}
		src := w.sources.get(ctx, obj)
		if !src.ok() || src.HashIn(c.Type) != c.Hash {
			return fail(c.Owner, fmt.Errorf("source of ClusterPullSecret %s changed while planning", c.Owner), nil)
		}
		desired, err := desiredCopy(ns, c.Name, corev1.SecretType(c.Type), obj, src, key)
		if err != nil {
			return fail(c.Owner, fmt.Errorf("write Secret %s/%s: its type %s cannot hold the credential of ClusterPullSecret %s (%w); delete it to have it made again",
				ns, c.Name, c.Type, c.Owner, err), nil)
		}
		if c.UID == "" {
			created, err := w.create(ctx, desired)
			if apierrors.IsAlreadyExists(err) {
				// Ours if it is the object the controller made, its marks
				// (those the copies' cache selects on) removed since.
				if own, ok := w.own.lookup(ns, c.Name); ok {
					// In its own type, which may not be the source's.
					build := func(t corev1.SecretType) (*corev1.Secret, error) { return desiredCopy(ns, c.Name, t, obj, src, key) }
					if err = w.restore(ctx, ns, c.Name, own.uid, build); err == nil {
						c.UID, c.Restore = string(own.uid), true
						out.done.UpdateCopies = append(out.done.UpdateCopies, c)
						continue
					}
					c.Restore = true
				}
			}
			switch {
			case apierrors.IsAlreadyExists(err) || errors.Is(err, errNotOurs):
				out.retry = w.conflicts.learn(ns, c.Name, fmt.Sprintf("Secret %s exists and was not made by pullsecrets; it is left alone", c.Name))
				out.learned = true
				return out
			case c.Restore && apierrors.IsForbidden(err):
				return w.cannotRestore(ns, c.Name, err, out)
			case err != nil:
				return fail(c.Owner, err, src.Secret.Data)
			}
			w.conflicts.forget(ns, c.Name)
			w.own.remember(ns, c.Name, ownCopy{uid: created, owner: c.Owner, ownerUID: c.OwnerUID})
			c.UID = string(created)
			out.done.CreateCopies = append(out.done.CreateCopies, c)
			continue
		}
		if c.Restore {
			err = w.restore(ctx, ns, c.Name, types.UID(c.UID), func(corev1.SecretType) (*corev1.Secret, error) { return desired, nil })
		} else {
			err = w.update(ctx, types.UID(c.UID), c.Proof, desired)
		}
		switch {
		case c.Restore && apierrors.IsForbidden(err):
			return w.cannotRestore(ns, c.Name, err, out)
		case err != nil:
			return fail(c.Owner, err, src.Secret.Data)
		}
		out.done.UpdateCopies = append(out.done.UpdateCopies, c)
	}

	for _, e := range p.ServiceAccounts {
		made, err := w.edit(ctx, ns, key, e)
		switch {
		case err != nil && !serviceaccount.IsGone(err):
			for _, cps := range e.Affects(recordOf(s, e.ServiceAccount)) {
				out.failed[cps] = err.Error()
			}
			out.err = err
			return out
		case err != nil || made == editSkipped:
			// Gone or replaced since planning: nothing was done, and the
			// rest of the plan assumed it would be.
			out.stale = true
			return out
		}
		out.done.ServiceAccounts = append(out.done.ServiceAccounts, e)
		if made == editMadeOnNewer {
			out.stale = true
			return out
		}
	}

	for _, d := range p.DeleteCopies {
		if err := w.delete(ctx, ns, d); err != nil {
			return fail(d.Owner, err, nil)
		}
		out.done.DeleteCopies = append(out.done.DeleteCopies, d)
		if obj := byName[d.Owner]; obj != nil && obj.DeletionTimestamp == nil {
			w.events.once(obj, nil, "retired/"+ns+"/"+d.Name+"/"+d.UID, time.Hour, corev1.EventTypeNormal, v1alpha1.ReasonCopyRetired,
				"deleted Secret %s/%s: %s", ns, d.Name, d.Why)
		}
	}

	for _, r := range p.DeletePods {
		delay, err := w.restarter.Restart(ctx, ns, r.Pod, types.UID(r.UID))
		if errors.Is(err, podrestart.ErrForbidden) {
			if obj := byName[r.By]; obj != nil {
				w.events.once(obj, nil, "restart-forbidden", 24*time.Hour, corev1.EventTypeWarning, v1alpha1.ReasonPodStuck, "%s", err.Error())
			}
			st := out.done.States[r.By]
			st.Stuck = append(st.Stuck, planner.Stuck{Pod: r.Pod, Why: err.Error()})
			out.done.States[r.By] = st
			continue
		}
		if err != nil {
			return fail(r.By, err, nil)
		}
		if delay > 0 {
			out.retry = minPositive(out.retry, delay)
			return out
		}
		out.done.DeletePods = append(out.done.DeletePods, r)
		if obj := byName[r.By]; obj != nil {
			w.events.once(obj, podRef(ns, r.Pod), "restarted/"+r.UID, 24*time.Hour, corev1.EventTypeNormal, v1alpha1.ReasonPodRestarted,
				"deleted Pod %s/%s, stuck on an image pull and created before ServiceAccount %s got %s, so that %s %s recreates it with the secret",
				ns, r.Pod, r.ServiceAccount, r.Secret, r.Owner.Kind, r.Owner.Name)
		}
	}

	for _, c := range p.ResignCopies {
		if err := w.resign(ctx, ns, key, c); err != nil {
			return fail(c.Owner, err, nil)
		}
		out.done.ResignCopies = append(out.done.ResignCopies, c)
	}
	return out
}

// resign writes a copy's proof again with the signing key, testing its UID
// and the proof it was planned on; nothing else of it changes.
func (w *writer) resign(ctx context.Context, ns string, ring *ownership.Ring, c planner.CopyWrite) error {
	ops := []jsonPatchOp{
		{Op: "test", Path: pointer("metadata", "uid"), Value: c.UID},
		{Op: "test", Path: pointer("metadata", "annotations", v1alpha1.ProofAnnotation), Value: c.Proof},
		{Op: "replace", Path: pointer("metadata", "annotations", v1alpha1.ProofAnnotation), Value: ring.CopyProof(ns, c.Name, c.Owner, types.UID(c.OwnerUID))},
	}
	return w.patchCopy(ctx, ns, c.Name, "sign again", ops)
}

// patchCopy applies a JSON patch to a copy and records the version it
// wrote, for the caches to catch up with; what names the write in errors.
func (w *writer) patchCopy(ctx context.Context, ns, name, what string, ops []jsonPatchOp) error {
	raw, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	basedOn := w.cachedVersion(ns, name)
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := w.client.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, raw)); err != nil {
		return fmt.Errorf("%s Secret %s/%s: %w", what, ns, name, err)
	}
	w.wroteCopy(key(obj), obj.UID, basedOn, w.record(obj))
	return nil
}

// recordOf is a ServiceAccount's record in the snapshot planned on.
func recordOf(s planner.Snapshot, sa string) map[string]string {
	for _, a := range s.ServiceAccounts {
		if a.Name == sa {
			return a.Record
		}
	}
	return nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// desiredCopy is the copy of a source, in type t (the source's for a new
// copy, the copy's own for an update: a Secret's type cannot change), with
// its marks and ownership proof.
func desiredCopy(ns, name string, t corev1.SecretType, cps *v1alpha1.ClusterPullSecret, src sourceState, key *ownership.Ring) (*corev1.Secret, error) {
	data := src.Secret.Data
	if t == "" {
		t = src.Secret.Type
	}
	if t != src.Secret.Type {
		var err error
		if data, err = credentialAs(src.Secret.Type, data, t); err != nil {
			return nil, err
		}
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      name,
			Labels:    map[string]string{v1alpha1.ManagedByLabel: v1alpha1.ManagedByValue, v1alpha1.OwnerLabel: cps.Name},
			Annotations: map[string]string{
				v1alpha1.SourceAnnotation:   src.Secret.Namespace + "/" + src.Secret.Name,
				v1alpha1.DataHashAnnotation: dataHash(t, data),
				v1alpha1.OwnerUIDAnnotation: string(cps.UID),
				v1alpha1.ProofAnnotation:    key.CopyProof(ns, name, cps.Name, cps.UID),
			},
		},
		Type: t,
		Data: data,
	}
	if at := src.Secret.Annotations[v1alpha1.ExpiresAtAnnotation]; at != "" {
		s.Annotations[v1alpha1.ExpiresAtAnnotation] = at
	}
	return s, nil
}

// create creates a copy; AlreadyExists means the name is taken by a Secret
// the cache does not show as a copy of ours.
func (w *writer) create(ctx context.Context, desired *corev1.Secret) (types.UID, error) {
	obj := desired.DeepCopy()
	if err := w.client.Create(ctx, obj); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", err
		}
		return "", fmt.Errorf("create Secret %s/%s: %w", desired.Namespace, desired.Name, err)
	}
	w.wroteCopy(key(obj), obj.UID, "", w.record(obj))
	return obj.UID, nil
}

type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// pointer is the JSON pointer (RFC 6901) to the field at parts. Each part
// is escaped by jsonpointer's shared replacer: a replacer built for each
// part was 6 KB of tables, 20 of them for every copy update (12 MB in
// flight as a rotation rewrote every copy).
func pointer(parts ...string) string {
	for i, p := range parts {
		parts[i] = jsonpointer.Escape(p)
	}
	return "/" + strings.Join(parts, "/")
}

// update brings a copy of ours to the desired data, in its own type (the
// plan's: a Secret's type cannot change, and the credential is written in
// it), with a proof of the signing key. The patch first tests the UID, the
// proof the copy was planned with (proof; "" for the signing key's own)
// and the type, so a Secret that stopped being our copy since the cache
// saw it is never modified.
func (w *writer) update(ctx context.Context, uid types.UID, proof string, desired *corev1.Secret) error {
	if proof == "" {
		proof = desired.Annotations[v1alpha1.ProofAnnotation]
	}
	ops := []jsonPatchOp{
		{Op: "test", Path: pointer("metadata", "uid"), Value: string(uid)},
		{Op: "test", Path: pointer("metadata", "annotations", v1alpha1.ProofAnnotation), Value: proof},
		{Op: "test", Path: pointer("type"), Value: desired.Type},
		{Op: "replace", Path: pointer("data"), Value: desired.Data},
		{Op: "add", Path: pointer("metadata", "annotations", v1alpha1.DataHashAnnotation), Value: desired.Annotations[v1alpha1.DataHashAnnotation]},
		{Op: "add", Path: pointer("metadata", "annotations", v1alpha1.SourceAnnotation), Value: desired.Annotations[v1alpha1.SourceAnnotation]},
		{Op: "replace", Path: pointer("metadata", "annotations", v1alpha1.ProofAnnotation), Value: desired.Annotations[v1alpha1.ProofAnnotation]},
	}
	if at := desired.Annotations[v1alpha1.ExpiresAtAnnotation]; at != "" {
		ops = append(ops, jsonPatchOp{Op: "add", Path: pointer("metadata", "annotations", v1alpha1.ExpiresAtAnnotation), Value: at})
	}
	return w.patchCopy(ctx, desired.Namespace, desired.Name, "update", ops)
}

// errNotOurs: the Secret at a copy's name is no longer the object the
// controller made.
var errNotOurs = errors.New("no longer the copy pullsecrets made")

// restore writes back a copy of ours whose marks someone changed or
// removed: read live, it must still be the object the controller made (its
// UID), and the patch tests that UID and the version read. Its data (built
// in its type) and every mark are put back; other labels and annotations
// are kept.
func (w *writer) restore(ctx context.Context, ns, name string, uid types.UID, build func(corev1.SecretType) (*corev1.Secret, error)) error {
	// By list, which the controller may do, not get, which it may not.
	var found corev1.SecretList
	if err := w.reader.List(ctx, &found, client.InNamespace(ns), client.MatchingFields{"metadata.name": name}); err != nil {
		return fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
	}
	if len(found.Items) != 1 || found.Items[0].UID != uid {
		w.own.forget(ns, name, uid)
		return errNotOurs
	}
	live := &found.Items[0]
	desired, err := build(live.Type)
	if err != nil {
		return fmt.Errorf("write Secret %s/%s: its type %s cannot hold the credential (%w); delete it to have it made again", ns, name, live.Type, err)
	}
	labels, annotations := maps.Clone(live.Labels), maps.Clone(live.Annotations)
	if labels == nil {
		labels = map[string]string{}
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	maps.Copy(labels, desired.Labels)
	maps.Copy(annotations, desired.Annotations)
	ops := []jsonPatchOp{
		{Op: "test", Path: pointer("metadata", "uid"), Value: string(uid)},
		{Op: "test", Path: pointer("metadata", "resourceVersion"), Value: live.ResourceVersion},
		{Op: "test", Path: pointer("type"), Value: desired.Type},
		{Op: "add", Path: pointer("data"), Value: desired.Data},
		{Op: "add", Path: pointer("metadata", "labels"), Value: labels},
		{Op: "add", Path: pointer("metadata", "annotations"), Value: annotations},
	}
	return w.patchCopy(ctx, ns, name, "restore the marks of", ops)
}

// cannotRestore reports a copy of ours whose marks admission keeps the
// controller from putting back (the pullsecrets-controller policy lets it
// write only Secrets that carry every mark): the name is a conflict whose
// message says how to have the copy made again.
func (w *writer) cannotRestore(ns, name string, err error, out outcome) outcome {
	out.retry = w.conflicts.learn(ns, name, fmt.Sprintf(
		"Secret %s is a copy pullsecrets made, but its marks were removed and admission refuses to put them back (%v); delete it to have it made again", name, err))
	out.learned = true
	return out
}

// delete deletes a copy of ours, only if it is still the object planned.
func (w *writer) delete(ctx context.Context, ns string, d planner.CopyDelete) error {
	basedOn := w.cachedVersion(ns, d.Name)
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: d.Name}}
	uid := types.UID(d.UID)
	err := w.client.Delete(ctx, obj, client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete Secret %s/%s: %w", ns, d.Name, err)
	}
	w.wroteCopy(types.NamespacedName{Namespace: ns, Name: d.Name}, uid, basedOn, nil)
	w.own.forget(ns, d.Name, uid)
	return nil
}

// wroteCopy lays a copy write (result nil: a delete) over the copies'
// index, then reads the index once more: if it already shows the write,
// the entry ends at once (overlay.caughtUpCopy).
func (w *writer) wroteCopy(key types.NamespacedName, uid types.UID, basedOn string, result *copyRecord) {
	w.overlay.wroteCopy(key, uid, basedOn, result)
	c, ok, err := w.copies.Get(key.Namespace, key.Name)
	if err != nil {
		return
	}
	if !ok {
		c = nil
	}
	w.overlay.caughtUpCopy(key, c)
}

// serviceAccountCaughtUp reads the ServiceAccounts' index after a write:
// if it shows the write already, its event found no entry to end (see
// overlay.caughtUpCopy).
func (w *writer) serviceAccountCaughtUp(ns, name string) {
	key := types.NamespacedName{Namespace: ns, Name: name}
	// The record's UID and version, not its Object: this runs after every
	// ServiceAccount write.
	cached, err := w.account(ns, name)
	switch {
	case apierrors.IsNotFound(err):
		w.overlay.observedServiceAccount(key, "", "")
	case err == nil:
		w.overlay.observedServiceAccount(key, cached.UID, cached.ResourceVersion)
	}
}

// cachedVersion is the resourceVersion the copies' index shows of a copy,
// which a write replaces.
func (w *writer) cachedVersion(ns, name string) string {
	if c, ok, err := w.copies.Get(ns, name); ok && err == nil {
		return c.resourceVersion
	}
	return ""
}

// editMade says what became of a ServiceAccount edit that did not fail.
type editMade int

const (
	// editApplied: applied to the version planned on (or nothing to do
	// there).
	editApplied editMade = iota
	// editMadeOnNewer: applied to, or found done on, another version.
	editMadeOnNewer
	// editSkipped: the ServiceAccount was replaced (another UID) since
	// planning; nothing was done.
	editSkipped
)

// edit applies a ServiceAccount edit with optimistic concurrency: on a
// conflict it re-reads the object, checks its record again and applies the
// same edit there.
func (w *writer) edit(ctx context.Context, ns string, k *ownership.Ring, e planner.Edit) (editMade, error) {
	cached, err := w.account(ns, e.ServiceAccount)
	if err != nil {
		return editSkipped, fmt.Errorf("read ServiceAccount %s/%s: %w", ns, e.ServiceAccount, err)
	}
	current := w.overlay.serviceAccount(cached.Object())
	if string(current.UID) != e.UID {
		return editSkipped, nil // replaced since planning; the next plan sees the new one
	}
	basedOn := current.ResourceVersion
	store := storeAdapter{client: w.client, reader: w.reader}
	var appliedTo string
	replaced := false
	updated, wrote, err := serviceaccount.Update(ctx, store, current, func(sa *corev1.ServiceAccount) (bool, error) {
		appliedTo = sa.ResourceVersion
		if string(sa.UID) != e.UID {
			replaced = true
			return false, nil
		}
		replaced = false
		rec, err := ownership.ReadRecord(sa, k)
		if err != nil {
			// An unverified record the plan adopts, if it is still the one
			// planned on.
			raw, rerr := serviceaccount.ReadRecord(sa)
			if e.Adopt == nil || !errors.Is(err, ownership.ErrRecordUnproven) || rerr != nil || !maps.Equal(raw, e.Adopt) {
				return false, err
			}
			rec = raw
		}
		list := make([]string, 0, len(sa.ImagePullSecrets))
		for _, r := range sa.ImagePullSecrets {
			list = append(list, r.Name)
		}
		list, rec, changed := e.Apply(list, rec)
		if changed {
			sa.ImagePullSecrets = nil
			for _, n := range list {
				sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
			}
		}
		// Also signs again a record an older key, or nobody, signed.
		signed := ownership.WriteRecord(sa, k, rec)
		return changed || signed, nil
	})
	switch {
	case err != nil:
		return editSkipped, err
	case replaced:
		return editSkipped, nil
	}
	if wrote {
		w.overlay.wroteServiceAccount(basedOn, accounts.Trim(updated))
		w.serviceAccountCaughtUp(ns, e.ServiceAccount)
		for _, a := range e.Attach {
			if a.Again && serviceaccount.Has(updated, a.Secret) {
				w.fights.add(types.NamespacedName{Namespace: ns, Name: e.ServiceAccount}, a.Secret)
			}
		}
	}
	if e.ResourceVersion != "" && appliedTo != e.ResourceVersion {
		return editMadeOnNewer, nil
	}
	return editApplied, nil
}

// storeAdapter lets package serviceaccount write through the
// controller-runtime client and re-read live on conflicts. It writes with a
// merge patch of the list and the record on the resourceVersion read
// (serviceaccount.MergePatch), not an update: the cached version holds
// only what the controller reads, and an update would remove the rest. The
// edit's mutation changes nothing else.
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
	patch, err := serviceaccount.MergePatch(sa)
	if err != nil {
		return nil, err
	}
	out := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: sa.Namespace, Name: sa.Name}}
	if err := s.client.Patch(ctx, out, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return nil, err
	}
	return out, nil
}

func key(obj metav1.Object) types.NamespacedName {
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
}
