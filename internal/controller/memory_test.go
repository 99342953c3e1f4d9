package controller

import (
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func copyAt(uid, rv string) *copyMeta {
	return &copyMeta{Namespace: "shop", Name: "reg", UID: types.UID(uid), ResourceVersion: rv}
}

// recordAt is the overlay's record of a write whose response was that
// copy.
func recordAt(uid, rv string) *copyRecord {
	return &copyRecord{namespace: "shop", name: "reg", uid: types.UID(uid), resourceVersion: rv}
}

var regKey = types.NamespacedName{Namespace: "shop", Name: "reg"}

// A copy created and then deleted before the cache showed it is made
// again: once the informer reports either event, the overlay stops
// answering "exists".
func TestOverlayForgetsACopyDeletedBeforeTheCacheSawIt(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(0, 0)}
	o := newOverlay(c.now)
	o.wroteCopy(regKey, "u1", "", recordAt("u1", "10"))
	if got := o.copy(regKey, nil); got == nil || got.UID != "u1" {
		t.Fatalf("right after the create: %+v", got)
	}
	o.observedCopy(regKey, "u1", "10") // the informer's ADD
	o.observedCopy(regKey, "u1", "")   // and its DELETE
	if got := o.copy(regKey, nil); got != nil {
		t.Fatalf("after the informer saw it go: %+v", got)
	}
	// Unobserved (a relist that never showed it): the TTL ends it.
	o.wroteCopy(regKey, "u2", "", recordAt("u2", "11"))
	c.t = c.t.Add(overlayTTL + time.Second)
	if got := o.copy(regKey, nil); got != nil {
		t.Fatalf("after the TTL: %+v", got)
	}
}

func TestOverlayYieldsToANewerCache(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(0, 0)}
	o := newOverlay(c.now)
	o.wroteCopy(regKey, "u1", "5", recordAt("u1", "6")) // an update of version 5
	if got := o.copy(regKey, copyAt("u1", "5")); got.ResourceVersion != "6" {
		t.Fatalf("cache still at 5: %+v", got)
	}
	if got := o.copy(regKey, copyAt("u1", "7")); got.ResourceVersion != "7" {
		t.Fatalf("cache past our write: %+v", got)
	}
	o.wroteCopy(regKey, "u1", "7", nil) // a delete
	if got := o.copy(regKey, copyAt("u2", "9")); got == nil || got.UID != "u2" {
		t.Fatalf("a new object of that name: %+v", got)
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "default", UID: "s", ResourceVersion: "1"}}
	ours := sa.DeepCopy()
	ours.ResourceVersion = "2"
	o.wroteServiceAccount("1", ours)
	if got := o.serviceAccount(sa); got.ResourceVersion != "2" {
		t.Fatalf("ServiceAccount behind: %+v", got)
	}
	newer := sa.DeepCopy()
	newer.ResourceVersion = "3"
	if got := o.serviceAccount(newer); got.ResourceVersion != "3" {
		t.Fatalf("ServiceAccount past our write: %+v", got)
	}
	if len(o.sas) != 0 {
		t.Fatal("entry kept after the cache caught up")
	}
}

// The overlay holds only recent writes: sweeping after the TTL leaves it
// empty, however many writes there were.
func TestOverlayIsBounded(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(0, 0)}
	o := newOverlay(c.now)
	for i := range 1000 {
		k := types.NamespacedName{Namespace: "ns", Name: string(rune('a' + i%26))}
		o.wroteCopy(k, types.UID(rune(i)), "", recordAt("x", "1"))
		o.wroteServiceAccount("1", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: k.Name}})
	}
	c.t = c.t.Add(overlayTTL + time.Second)
	o.sweep()
	if len(o.copies)+len(o.sas) != 0 {
		t.Fatalf("%d entries left", len(o.copies)+len(o.sas))
	}
}

// createdIn names the copies created in one namespace that the cache may
// not show yet: not those of other namespaces, not updates or deletes, and
// none once the informer has shown them.
func TestOverlayCreatedInOneNamespace(t *testing.T) {
	t.Parallel()
	o := newOverlay(time.Now)
	key := func(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }
	o.wroteCopy(key("shop", "reg"), "1", "", recordAt("1", "10"))
	o.wroteCopy(key("shop", "reg-old"), "2", "7", recordAt("2", "11")) // an update
	o.wroteCopy(key("shop", "gone"), "3", "8", nil)                    // a delete
	o.wroteCopy(key("shop", "reg-2"), "4", "", recordAt("4", "12"))
	o.wroteCopy(key("bank", "reg"), "5", "", recordAt("5", "13"))
	got := o.createdIn("shop")
	slices.Sort(got)
	if want := []string{"reg", "reg-2"}; !slices.Equal(got, want) {
		t.Errorf("created in shop: %v, want %v", got, want)
	}
	if got := o.createdIn("empty"); len(got) != 0 {
		t.Errorf("created in a namespace without writes: %v", got)
	}
	o.observedCopy(key("bank", "reg"), "5", "13")
	if got := o.createdIn("bank"); len(got) != 0 {
		t.Errorf("created in bank after the informer showed it: %v", got)
	}
	if _, ok := o.copies["bank"]; ok {
		t.Error("the namespace's entry stays after its last write ended")
	}
}

func TestConflictsBackOffAndForget(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(0, 0)}
	k := newConflicts(c.now)
	var waits []time.Duration
	for range 7 {
		waits = append(waits, k.learn("shop", "reg", "taken"))
		c.t = c.t.Add(waits[len(waits)-1])
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("backoff %v, want %v", waits, want)
		}
	}
	k.learn("shop", "reg", "taken")
	if blocked, next := k.blocked("shop"); blocked["reg"] == "" || next != 5*time.Minute {
		t.Fatalf("blocked %v next %v", blocked, next)
	}
	c.t = c.t.Add(5 * time.Minute)
	if blocked, _ := k.blocked("shop"); len(blocked) != 0 {
		t.Fatalf("due for a retry but still blocked: %v", blocked)
	}
	// Long resolved: the backoff is forgotten and the map empties.
	c.t = c.t.Add(conflictRetryLongest + time.Second)
	k.blocked("shop")
	if len(k.by) != 0 {
		t.Fatalf("kept %v", k.by)
	}
	k.learn("gone", "reg", "taken")
	k.forget("gone", "")
	if len(k.by) != 0 {
		t.Fatalf("a deleted namespace kept: %v", k.by)
	}
}

// The overlay keeps what a write changed, not the object it returned: laid
// over the version the cache shows, it gives back the write's result
// (managed fields aside, which the cache drops too), and changing the
// result afterwards changes nothing.
func TestOverlayKeepsWhatTheWriteChangedNotTheObject(t *testing.T) {
	t.Parallel()
	o := newOverlay((&clock{t: time.Unix(0, 0)}).now)
	cached := &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "shop", Name: "app", UID: "s", ResourceVersion: "1",
			Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
		},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "own"}},
	}
	result := cached.DeepCopy()
	result.ResourceVersion = "2"
	result.ImagePullSecrets = append(result.ImagePullSecrets, corev1.LocalObjectReference{Name: "regcred"})
	result.Annotations[v1alpha1.AttachedAnnotation] = `{"regcred":"fleet"}`
	result.Annotations[v1alpha1.AttachedProofAnnotation] = "proof"
	result.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "pullsecrets-controller"}}
	o.wroteServiceAccount("1", result)
	want := result.DeepCopy()
	want.ManagedFields = nil
	result.ImagePullSecrets[1].Name = "changed-after"
	result.Annotations[v1alpha1.AttachedProofAnnotation] = "changed-after"

	got := o.serviceAccount(cached)
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("overlaid:\n%+v\nwant\n%+v", got, want)
	}
	if len(cached.ImagePullSecrets) != 1 || cached.Annotations[v1alpha1.AttachedAnnotation] != "" || cached.ResourceVersion != "1" {
		t.Fatalf("the cached object was modified: %+v", cached)
	}

	// A detach: the record and proof removed.
	detached := want.DeepCopy()
	detached.ResourceVersion = "3"
	detached.ImagePullSecrets = detached.ImagePullSecrets[:1]
	delete(detached.Annotations, v1alpha1.AttachedAnnotation)
	delete(detached.Annotations, v1alpha1.AttachedProofAnnotation)
	o.wroteServiceAccount("2", detached)
	if got := o.serviceAccount(want); !equality.Semantic.DeepEqual(got, detached) {
		t.Fatalf("after the detach:\n%+v\nwant\n%+v", got, detached)
	}
}

// The informer's event of a ServiceAccount ends what the overlay keeps of
// our write once it shows anything but the version the write replaced: a
// cold start's writes are not held until the TTL.
func TestOverlayForgetsAServiceAccountWriteTheInformerShowed(t *testing.T) {
	t.Parallel()
	key := types.NamespacedName{Namespace: "shop", Name: "app"}
	for _, tc := range []struct {
		name    string
		uid     types.UID
		rv      string
		forgets bool
	}{
		{name: "the version the write replaced (a late event)", uid: "s", rv: "1", forgets: false},
		{name: "our write", uid: "s", rv: "2", forgets: true},
		{name: "a later version", uid: "s", rv: "7", forgets: true},
		{name: "its deletion", uid: "s", rv: "", forgets: true},
		{name: "another object of the name", uid: "t", rv: "1", forgets: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOverlay((&clock{t: time.Unix(0, 0)}).now)
			cached := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, UID: "s", ResourceVersion: "1"}}
			result := cached.DeepCopy()
			result.ResourceVersion = "2"
			result.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
			o.wroteServiceAccount("1", result)
			o.observedServiceAccount(key, tc.uid, tc.rv)
			if _, kept := o.sas[key]; kept == tc.forgets {
				t.Fatalf("kept %v, want %v", kept, !tc.forgets)
			}
			if got := o.serviceAccount(cached); tc.forgets != (got == cached) {
				t.Fatalf("overlaid %v after the event, want %v", got != cached, !tc.forgets)
			}
		})
	}
	o := newOverlay((&clock{t: time.Unix(0, 0)}).now)
	o.observedServiceAccount(key, "s", "3") // nothing written: nothing to forget
	if len(o.sas) != 0 {
		t.Fatal("an entry appeared")
	}
}

// A write that re-read a newer version after a conflict changed more than
// the cached version shows: the overlay does not pretend to know the
// result, and leaves the cache's answer (a write from it conflicts and
// re-reads).
func TestOverlayIgnoresAWriteBasedOnAnotherVersion(t *testing.T) {
	t.Parallel()
	o := newOverlay((&clock{t: time.Unix(0, 0)}).now)
	cached := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "app", UID: "s", ResourceVersion: "1"}}
	result := cached.DeepCopy()
	result.ResourceVersion = "3"
	result.Labels = map[string]string{"added-by": "someone else, at version 2"}
	result.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	o.wroteServiceAccount("1", result)
	if got := o.serviceAccount(cached); got != cached {
		t.Fatalf("overlaid a write based on another version: %+v", got)
	}
	if len(o.sas) != 0 {
		t.Fatal("entry kept")
	}
}

// BenchmarkOverlayBytes measures what the overlay holds for each write the
// watch has not shown yet: in a 10,000-namespace cold start that is most
// of the 40,000 writes at once (docs/benchmarks.md). The responses are
// decoded from protobuf, as the client decodes them, so that each string
// is its own allocation.
func BenchmarkOverlayBytes(b *testing.B) {
	const n = 10000
	var sas, copies [][]byte
	for i := range n {
		sa, secret := fleetAccount(i), fleetCopy(i)
		rawSA, err := sa.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		rawSecret, err := secret.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		sas, copies = append(sas, rawSA), append(copies, rawSecret)
	}
	for range b.N {
		o := newOverlay(time.Now)
		w := &writer{overlay: o, intern: newInterner().intern}
		runtime.GC()
		var before, mid, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, raw := range sas {
			var sa corev1.ServiceAccount
			if err := sa.Unmarshal(raw); err != nil {
				b.Fatal(err)
			}
			o.wroteServiceAccount("1", &sa)
		}
		runtime.GC()
		runtime.ReadMemStats(&mid)
		for _, raw := range copies {
			var s corev1.Secret
			if err := s.Unmarshal(raw); err != nil {
				b.Fatal(err)
			}
			o.wroteCopy(key(&s), s.UID, "", w.record(&s))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(o)
		b.ReportMetric(float64(mid.HeapAlloc-before.HeapAlloc)/n, "bytes/ServiceAccount-write")
		b.ReportMetric(float64(after.HeapAlloc-mid.HeapAlloc)/n, "bytes/copy-write")
	}
}

// A write whose watch event came before its response (the index already
// shows it when the entry is made) is not left in flight; a write the
// index does not show yet is.
func TestOverlayEndsAWriteTheIndexShowedFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		basedOn string
		deleted bool
		cached  *copyRecord
		ends    bool
	}{
		{name: "create, not shown yet", cached: nil, ends: false},
		{name: "create, shown", cached: recordAt("u1", "10"), ends: true},
		{name: "create, another object of the name shown", cached: recordAt("u0", "9"), ends: false},
		{name: "update, the version it replaced shown", basedOn: "7", cached: recordAt("u1", "7"), ends: false},
		{name: "update, shown", basedOn: "7", cached: recordAt("u1", "10"), ends: true},
		{name: "update, a later version shown", basedOn: "7", cached: recordAt("u1", "12"), ends: true},
		{name: "delete, still shown", basedOn: "7", deleted: true, cached: recordAt("u1", "7"), ends: false},
		{name: "delete, gone from the index", basedOn: "7", deleted: true, cached: nil, ends: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := newOverlay(time.Now)
			result := recordAt("u1", "10")
			if tc.deleted {
				result = nil
			}
			o.wroteCopy(regKey, "u1", tc.basedOn, result)
			o.caughtUpCopy(regKey, tc.cached)
			if ended := len(o.copies) == 0; ended != tc.ends {
				t.Fatalf("ended %v, want %v", ended, tc.ends)
			}
		})
	}
}
