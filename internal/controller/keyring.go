package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
)

// keyring keeps the ownership keys (package ownership) the controller
// signs and checks its marks with, so that the one Secret holding them is
// never a silent single point of failure (docs/controller.md, "The
// ownership key"). It runs on every replica, so that a standby holds the
// current ring when it becomes leader; only the leader writes the key
// Secret:
//
//   - on first start, with no mark anywhere, it makes the key;
//   - a key Secret deleted or broken under a running controller is made
//     again from memory, and said so (log, Event, metric);
//   - a key Secret replaced by another key keeps the keys it replaced, for
//     checking, so nothing proven stops being proven;
//   - a missing key is never made again where marks made with a key
//     exist: nothing is written, and the condition names the key and the
//     one command that recovers (RecoverDataKey);
//   - a rotation asked for (RotateAnnotation) makes a new signing key; the
//     older ones check until the plans have signed everything again
//     (Copy.Resign, ServiceAccount.RecordResign), then go.
type keyring struct {
	namespace string
	live      client.Reader   // the key Secret, read from the API server
	accounts  *accounts.Index // ServiceAccounts and copies, to look for marks
	copies    *copies
	cps       *cpsCache
	client    client.Client // writes of the key Secret
	elected   <-chan struct{}
	recorder  events.EventRecorder
	metrics   *keyMetrics
	// changed is called when the ring or the recovery changes: every
	// namespace is planned again.
	changed func()
	now     func() time.Time
	log     logr.Logger
	// interval is keySyncInterval but in tests.
	interval time.Duration

	kick chan struct{}
	// watched is the cache whose Secrets of the key namespace wake it.
	watched cache.Cache

	mu      sync.RWMutex
	ring    *ownership.Ring
	problem string
	// adoptUntil: copies marked for live ClusterPullSecrets are adopted
	// whatever they hold until then (RecoverAdoptMarked).
	adoptUntil time.Time
	// note is added to the conflicts of unproven copies after a recovery.
	note string
	// clean counts the checks in a row that found nothing an older key
	// signed.
	clean int
	// unwritten: keys of a replaced Secret were merged into the ring held
	// while this replica did not lead; written once it does.
	unwritten bool
}

// keySyncInterval bounds how long a change of the key Secret goes unseen
// if its watch event is lost, and paces the check for older keys' marks.
const keySyncInterval = 30 * time.Second

// adoptMarkedFor is how long a recovery adopts marked copies: every
// namespace is planned again at once, so minutes are plenty.
const adoptMarkedFor = 15 * time.Minute

func (k *keyring) NeedLeaderElection() bool { return false }

// state is what the reader needs: the ring (nil while there is none), and
// the recovery's adoption and note.
func (k *keyring) state() (*ownership.Ring, bool, string) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.ring, k.now().Before(k.adoptUntil), k.note
}

// missing says why the controller writes nothing ("" when it holds a key).
func (k *keyring) missing() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	switch {
	case k.ring != nil:
		return ""
	case k.problem == "":
		return fmt.Sprintf("the ownership key Secret %s is not read yet", k.ref())
	}
	return k.problem
}

// readyz fails while there is no key.
func (k *keyring) readyz(*http.Request) error {
	if why := k.missing(); why != "" {
		return errors.New(why)
	}
	return nil
}

func (k *keyring) ref() types.NamespacedName {
	return types.NamespacedName{Namespace: k.namespace, Name: v1alpha1.OwnershipKeySecretName}
}

// Start loads the ring and keeps it: at every change of the key Secret
// (watched through informer, when there is one) and every keySyncInterval.
func (k *keyring) Start(ctx context.Context) error {
	watching := false
	if k.watched != nil {
		if err := k.watch(ctx, k.watched); err != nil {
			k.log.Error(err, "watch the ownership key Secret; it is read every 30s instead")
		} else {
			watching = true
		}
	}
	interval := cmp.Or(k.interval, keySyncInterval)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	backoff := time.Second
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.kick:
		case <-ticker.C:
			k.dropOlderKeys(ctx)
			if watching && k.missing() == "" {
				// Watched and held: every change wakes the ring, so a
				// steady cluster costs no request.
				continue
			}
		case <-retry.C:
		case <-k.elected:
			k.elected = nil // leading now: the writes are ours
		}
		if err := k.sync(ctx); err != nil {
			k.log.Error(err, "ownership key", "secret", k.ref(), "retry", backoff)
			retry.Reset(backoff)
			backoff = min(2*backoff, interval/3)
			continue
		}
		backoff = time.Second
	}
}

// watch wakes the ring on every event of the key Secret.
func (k *keyring) watch(ctx context.Context, c cache.Cache) error {
	informer, err := c.GetInformer(ctx, &corev1.Secret{})
	if err != nil {
		return err
	}
	kick := func(obj any) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if s, ok := obj.(client.Object); ok && s.GetNamespace() == k.namespace && s.GetName() == v1alpha1.OwnershipKeySecretName {
			select {
			case k.kick <- struct{}{}:
			default:
			}
		}
	}
	_, err = informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: kick, UpdateFunc: func(_, obj any) { kick(obj) }, DeleteFunc: kick,
	})
	return err
}

func (k *keyring) leading() bool {
	if k.elected == nil {
		return true
	}
	select {
	case <-k.elected:
		return true
	default:
		return false
	}
}

// sync reads the key Secret and acts on it; an error is retried.
func (k *keyring) sync(ctx context.Context) error {
	var s corev1.Secret
	err := k.live.Get(ctx, k.ref(), &s)
	k.mu.RLock()
	held := k.ring
	k.mu.RUnlock()
	switch {
	case apierrors.IsNotFound(err):
		return k.absent(ctx, held)
	case err != nil:
		if held == nil {
			k.set(nil, fmt.Sprintf("the ownership key Secret %s cannot be read (%v): nothing is written until it can", k.ref(), err), time.Time{}, "")
		}
		return fmt.Errorf("read ownership key Secret %s: %w", k.ref(), err)
	}
	ring, rerr := ownership.RingFromSecret(&s)
	switch {
	case rerr == nil:
		return k.present(ctx, &s, ring, held)
	case held != nil:
		// Broken under a running controller: made again from memory.
		return k.restore(ctx, &s, held, "was changed into one that holds no usable key")
	case s.Type == v1alpha1.OwnershipKeySecretType && string(s.Data[ownership.RecoverDataKey]) == ownership.RecoverAdoptMarked:
		return k.recover(ctx, &s)
	}
	k.set(nil, fmt.Sprintf("the ownership key Secret %s holds no usable key (%v): nothing is written. Restore it from a backup, or delete it and accept a new key: %s",
		k.ref(), rerr, k.recoveryCommand()), time.Time{}, "")
	return nil
}

// recoveryCommand is the one command that recovers from a lost key.
func (k *keyring) recoveryCommand() string {
	return fmt.Sprintf("kubectl -n %s create secret generic %s --type=%s --from-literal=%s=%s (docs/controller.md, \"The ownership key\")",
		k.namespace, v1alpha1.OwnershipKeySecretName, v1alpha1.OwnershipKeySecretType, ownership.RecoverDataKey, ownership.RecoverAdoptMarked)
}

// present takes the ring of the key Secret, keeping the keys of the one
// held (a Secret replaced under a running controller), and rotates when
// asked.
func (k *keyring) present(ctx context.Context, s *corev1.Secret, ring, held *ownership.Ring) error {
	orig := s.DeepCopy()
	write, merged := false, false
	if held != nil && (!ring.Has(held.Signing()) || (k.unwritten && !hasAll(ring, held))) {
		ring = ring.Merged(held)
		write, merged = true, true
	}
	if want := s.Annotations[ownership.RotateAnnotation]; want != "" && want != s.Annotations[ownership.RotatedAnnotation] && k.leading() {
		next, err := newKey()
		if err != nil {
			return err
		}
		ring = ring.Rotated(next)
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[ownership.RotatedAnnotation] = want
		write = true
		k.metrics.event("rotated")
		k.event(s, corev1.EventTypeNormal, "rotated: a new signing key; everything is signed again with it in the background, then the older keys go")
	}
	if merged && !k.leading() {
		// Kept in memory; the Secret may lose them for good if the
		// leader-to-be read it alone.
		k.unwritten = true
	}
	if write && k.leading() {
		if err := k.patch(ctx, s, orig, ring); err != nil {
			return err
		}
		k.unwritten = false
		if merged {
			k.metrics.event("merged")
			k.event(s, corev1.EventTypeWarning, "the key Secret was replaced by another key; the keys it replaced are kept for checking, and everything is signed again with the new one")
		}
	}
	until := time.Time{}
	if at, err := time.Parse(time.RFC3339, s.Annotations[ownership.AdoptMarkedUntilAnnotation]); err == nil {
		until = at
	}
	note := ""
	if at := s.Annotations[recoveredAtAnnotation]; at != "" {
		note = fmt.Sprintf("; the ownership key was replaced at %s after a loss: a copy is adopted once it holds its ClusterPullSecret's current credential, and restoring the lost key as %s in the key Secret proves the rest (docs/controller.md, \"The ownership key\")",
			at, "older.N")
	}
	k.set(ring, "", until, note)
	return nil
}

// recoveredAtAnnotation says when a recovery replaced a lost key.
const recoveredAtAnnotation = "pullsecrets.dev/recovered-at"

// recover makes a new key where the operator asked for one after a loss,
// adopting the copies marked for live ClusterPullSecrets for a while.
func (k *keyring) recover(ctx context.Context, s *corev1.Secret) error {
	if !k.leading() {
		k.set(nil, fmt.Sprintf("the ownership key Secret %s asks for a new key; the leader makes it", k.ref()), time.Time{}, "")
		return nil
	}
	next, err := newKey()
	if err != nil {
		return err
	}
	now := k.now().UTC()
	orig := s.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[ownership.AdoptMarkedUntilAnnotation] = now.Add(adoptMarkedFor).Format(time.RFC3339)
	s.Annotations[recoveredAtAnnotation] = now.Format(time.RFC3339)
	if err := k.patch(ctx, s, orig, ownership.NewRing(next)); err != nil {
		return err
	}
	k.metrics.event("recovered")
	k.event(s, corev1.EventTypeWarning, "a new key replaces the lost one, as asked: copies marked for live ClusterPullSecrets are adopted")
	return k.present(ctx, s, ownership.NewRing(next), nil)
}

// absent handles a missing key Secret.
func (k *keyring) absent(ctx context.Context, held *ownership.Ring) error {
	if held != nil {
		return k.restore(ctx, nil, held, "was deleted")
	}
	marks, err := k.marks(ctx)
	if err != nil {
		return err
	}
	k.metrics.marksWithoutKey.Set(float64(marks))
	if marks > 0 {
		// Never silently: a new key would orphan every copy.
		k.set(nil, fmt.Sprintf("the ownership key Secret %s is missing, and %d copies and ServiceAccounts carry proofs made with a key: nothing is written until it is back. "+
			"Restore it from a backup, or accept a new key that adopts the copies marked for live ClusterPullSecrets: %s", k.ref(), marks, k.recoveryCommand()), time.Time{}, "")
		k.log.Error(errors.New("ownership key missing"), "nothing is written until the key is restored or recovered", "secret", k.ref(), "marks", marks)
		return nil
	}
	if !k.leading() {
		k.set(nil, fmt.Sprintf("waiting for the leader to make the ownership key Secret %s", k.ref()), time.Time{}, "")
		return nil
	}
	next, err := newKey()
	if err != nil {
		return err
	}
	s := k.keySecret(ownership.NewRing(next))
	if err := k.client.Create(ctx, s); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return errors.New("the key Secret appeared meanwhile: read it again")
		}
		k.set(nil, fmt.Sprintf("the ownership key Secret %s cannot be made (%v): nothing is written until it can", k.ref(), err), time.Time{}, "")
		return fmt.Errorf("create ownership key Secret %s: %w", k.ref(), err)
	}
	k.metrics.event("created")
	k.metrics.marksWithoutKey.Set(0)
	k.event(s, corev1.EventTypeNormal, "made on first start")
	k.set(ownership.NewRing(next), "", time.Time{}, "")
	return nil
}

// restore makes the key Secret again from the ring held (s: the broken one,
// nil when it is gone). A standby keeps using its ring; the leader writes.
func (k *keyring) restore(ctx context.Context, s *corev1.Secret, held *ownership.Ring, what string) error {
	if !k.leading() {
		return nil
	}
	if s != nil {
		// Its type may be wrong, and a type cannot change: made again.
		uid := s.UID
		if err := k.client.Delete(ctx, s, client.Preconditions{UID: &uid}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete broken ownership key Secret %s: %w", k.ref(), err)
		}
	}
	fresh := k.keySecret(held)
	if err := k.client.Create(ctx, fresh); err != nil {
		return fmt.Errorf("restore ownership key Secret %s: %w", k.ref(), err)
	}
	k.metrics.event("restored")
	k.log.Info("ownership key Secret restored from memory", "secret", k.ref(), "why", what)
	k.event(fresh, corev1.EventTypeWarning, fmt.Sprintf("the key Secret %s; restored from the controller's memory. Back it up (docs/controller.md, \"The ownership key\")", what))
	return nil
}

// patch writes ring into the key Secret s (with its other changes) as a
// merge patch from orig that holds only if the Secret is still the version
// read (the controller may patch Secrets, not update them).
func (k *keyring) patch(ctx context.Context, s, orig *corev1.Secret, ring *ownership.Ring) error {
	s.Data = ring.Data()
	if err := k.client.Patch(ctx, s, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("update ownership key Secret %s: %w", k.ref(), err)
	}
	return nil
}

func (k *keyring) keySecret(r *ownership.Ring) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: k.namespace, Name: v1alpha1.OwnershipKeySecretName,
			Labels: map[string]string{"app.kubernetes.io/name": "pullsecrets", "app.kubernetes.io/component": "ownership-key"},
		},
		Type: v1alpha1.OwnershipKeySecretType,
		Data: r.Data(),
	}
}

// marks counts the copies and ServiceAccount records that carry a proof
// for a live ClusterPullSecret (its name and UID): what a new key would
// orphan. Marks of ClusterPullSecrets that are gone matter to nobody, and
// objects going away are not counted.
func (k *keyring) marks(ctx context.Context) (int, error) {
	if err := k.listed(ctx); err != nil {
		return 0, err
	}
	all, err := k.cps.list(ctx)
	if err != nil {
		return 0, err
	}
	live := map[string]types.UID{}
	for _, c := range all {
		if c.obj != nil {
			live[c.obj.Name] = c.obj.UID
		}
	}
	n := 0
	if err := k.copies.Each(func(c *copyRecord) bool {
		owner, _ := c.labels.Get(v1alpha1.OwnerLabel)
		proof, _ := c.annotations.Get(v1alpha1.ProofAnnotation)
		ownerUID, _ := c.annotations.Get(v1alpha1.OwnerUIDAnnotation)
		if uid, ok := live[owner]; ok && !c.deleting && proof != "" && string(uid) == ownerUID {
			n++
		}
		return true
	}); err != nil {
		return 0, fmt.Errorf("list copies: %w", err)
	}
	err = k.accounts.Each(func(a *accounts.Account) bool {
		if proof, _ := a.Annotation(v1alpha1.AttachedProofAnnotation); a.Deleting || proof == "" {
			return true
		}
		rec, err := serviceaccount.ReadRecord(a.Object())
		if err != nil {
			return true
		}
		for _, by := range rec {
			if _, ok := live[by]; ok {
				n++
				break
			}
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("list ServiceAccounts: %w", err)
	}
	return n, nil
}

// listed waits until the ServiceAccounts and the copies are listed (a
// moment after the start), as a read of the manager's cache would.
func (k *keyring) listed(ctx context.Context) error {
	if err := k.accounts.WaitForSync(ctx); err != nil {
		return fmt.Errorf("ServiceAccounts: %w", err)
	}
	if err := k.copies.WaitForSync(ctx); err != nil {
		return fmt.Errorf("copies: %w", err)
	}
	return nil
}

// dropOlderKeys removes the older keys from the key Secret once two checks
// in a row found nothing they signed that the signing key did not sign
// again (objects going away aside).
func (k *keyring) dropOlderKeys(ctx context.Context) {
	k.mu.RLock()
	ring := k.ring
	k.mu.RUnlock()
	if ring == nil || len(ring.Older()) == 0 || !k.leading() {
		return
	}
	old, err := k.signedByOlder(ctx, ring)
	if err != nil {
		k.log.Error(err, "count marks of older ownership keys")
		return
	}
	k.metrics.signedByOlder.Set(float64(old))
	k.mu.Lock()
	if old > 0 {
		k.clean = 0
	} else {
		k.clean++
	}
	clean := k.clean
	k.mu.Unlock()
	if clean < 2 {
		return
	}
	var s corev1.Secret
	if err := k.live.Get(ctx, k.ref(), &s); err != nil {
		return
	}
	// Only the ring that was checked: an older key added since (a lost key
	// put back) has not been.
	current, err := ownership.RingFromSecret(&s)
	if err != nil || !sameRing(current, ring) {
		return
	}
	if err := k.patch(ctx, &s, s.DeepCopy(), current.Current()); err != nil {
		k.log.Error(err, "drop older ownership keys")
		return
	}
	k.metrics.event("older-dropped")
	k.event(&s, corev1.EventTypeNormal, "everything is signed with the current key: the older keys are dropped")
	k.set(current.Current(), "", time.Time{}, "")
}

// signedByOlder counts live copies and records whose proof only an older
// key of the ring checks.
func (k *keyring) signedByOlder(ctx context.Context, ring *ownership.Ring) (int, error) {
	if err := k.listed(ctx); err != nil {
		return 0, err
	}
	n := 0
	if err := k.copies.Each(func(c *copyRecord) bool {
		if c.deleting {
			return true
		}
		if valid, current := ownership.CopyProven(ring, c.namespace, c.name, c.labels.Map(), c.annotations.Map()); valid && !current {
			n++
		}
		return true
	}); err != nil {
		return 0, err
	}
	err := k.accounts.Each(func(a *accounts.Account) bool {
		if proof, _ := a.Annotation(v1alpha1.AttachedProofAnnotation); a.Deleting || proof == "" {
			return true
		}
		if _, current, err := ownership.ReadRecordSigned(a.Object(), ring); err == nil && !current {
			n++
		}
		return true
	})
	return n, err
}

// set installs a ring (nil: none, with why) and wakes everything when it
// changed.
func (k *keyring) set(ring *ownership.Ring, problem string, adoptUntil time.Time, note string) {
	k.mu.Lock()
	changedRing := !sameRing(k.ring, ring)
	moved := changedRing || k.problem != problem || !k.adoptUntil.Equal(adoptUntil) || k.note != note
	k.ring, k.problem, k.adoptUntil, k.note = ring, problem, adoptUntil, note
	if changedRing {
		k.clean = 0 // checks of another ring do not count
	}
	k.mu.Unlock()
	if ring != nil {
		k.metrics.ready.Set(1)
		k.metrics.keys.Set(float64(1 + len(ring.Older())))
	} else {
		k.metrics.ready.Set(0)
	}
	if moved {
		if problem != "" {
			k.log.Info("ownership key unavailable: nothing is written", "why", problem)
		}
		k.changed()
	}
}

// hasAll reports whether ring holds every key of held.
func hasAll(ring, held *ownership.Ring) bool {
	if !ring.Has(held.Signing()) {
		return false
	}
	for _, k := range held.Older() {
		if !ring.Has(k) {
			return false
		}
	}
	return true
}

func sameRing(a, b *ownership.Ring) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !a.Signing().Equal(b.Signing()) || len(a.Older()) != len(b.Older()) {
		return false
	}
	for i, k := range a.Older() {
		if !k.Equal(b.Older()[i]) {
			return false
		}
	}
	return true
}

func (k *keyring) event(s *corev1.Secret, eventType, note string) {
	if k.recorder == nil {
		return
	}
	regarding := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: k.namespace, Name: v1alpha1.OwnershipKeySecretName, UID: s.UID}}
	k.recorder.Eventf(regarding, nil, eventType, v1alpha1.ReasonOwnershipKey, "Reconcile", "ownership key: %s", note)
}

func newKey() (*ownership.Key, error) {
	raw, err := ownership.GenerateKey()
	if err != nil {
		return nil, err
	}
	return ownership.NewKey(raw)
}

// keyMetrics are the key's series.
type keyMetrics struct {
	ready           prometheus.Gauge
	keys            prometheus.Gauge
	marksWithoutKey prometheus.Gauge
	signedByOlder   prometheus.Gauge
	events          *prometheus.CounterVec
}

func newKeyMetrics(reg prometheus.Registerer) keyMetrics {
	m := keyMetrics{
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullsecrets_ownership_key_ready",
			Help: "1 when the controller holds the ownership key and writes; 0 while it is missing (nothing is written: see the ClusterPullSecrets' Ready condition).",
		}),
		keys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullsecrets_ownership_keys", Help: "Keys in the ownership key ring: more than 1 while marks of older keys are signed again.",
		}),
		marksWithoutKey: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullsecrets_ownership_marks_without_key", Help: "Copies and ServiceAccounts carrying proofs while the ownership key is missing.",
		}),
		signedByOlder: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pullsecrets_ownership_marks_signed_by_older_keys", Help: "Copies and ServiceAccounts still signed by an older key of the ring.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pullsecrets_ownership_key_events_total", Help: "Changes of the ownership key Secret by the controller: created, restored, merged, rotated, recovered, older-dropped.",
		}, []string{"event"}),
	}
	reg.MustRegister(m.ready, m.keys, m.marksWithoutKey, m.signedByOlder, m.events)
	return m
}

func (m *keyMetrics) event(what string) { m.events.WithLabelValues(what).Inc() }
