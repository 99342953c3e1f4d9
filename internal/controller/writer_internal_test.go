package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/accounts"
	"github.com/pullsecrets/pullsecrets/internal/controller/podrestart"
	"github.com/pullsecrets/pullsecrets/internal/ownership"
	"github.com/pullsecrets/pullsecrets/internal/planner"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// The writer against the real API server: what it counts as done, when it
// stops a plan, and whom it reports a failure against.

type writerWorld struct {
	t      *testing.T
	ctx    context.Context
	client client.Client
	ns     string
	key    *ownership.Ring
}

func newWriterWorld(t *testing.T) *writerWorld {
	t.Helper()
	c := testcluster.Get(t)
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ownership.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ownership.NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &writerWorld{t: t, ctx: testcluster.Context(t), client: cl, ns: c.Namespace(t), key: ownership.NewRing(key)}
}

func testScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = v1alpha1.AddToScheme(s)
	return s
}

// writer is a writer over cl (the API server itself, no cache).
func (w *writerWorld) writer(cl client.Client) *writer {
	now := time.Now
	return &writer{
		client: cl, reader: cl, cps: newCPSCache(cl), copies: liveIndexes(w.t, testcluster.Get(w.t)).copies,
		// What the cache would hand out: the live object, trimmed.
		account: func(ns, name string) (*accounts.Account, error) {
			var sa corev1.ServiceAccount
			if err := cl.Get(w.ctx, types.NamespacedName{Namespace: ns, Name: name}, &sa); err != nil {
				return nil, err
			}
			return accounts.FromObject(&sa, nil), nil
		}, overlay: newOverlay(now), conflicts: newConflicts(now),
		fights: newReattachments(now, time.Hour), own: newOwnCopies(), restarter: podrestart.New(cl, 100), events: newEventSink(events.NewFakeRecorder(100)),
		intern: newInterner().intern,
	}
}

func (w *writerWorld) serviceAccount(name string) *corev1.ServiceAccount {
	w.t.Helper()
	var sa corev1.ServiceAccount
	if err := w.client.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: name}, &sa); err != nil {
		w.t.Fatal(err)
	}
	return &sa
}

// plainSecret makes a Secret the plan may delete (DeleteCopies carries its
// UID), to see whether the writer got that far.
func (w *writerWorld) plainSecret(name string) planner.CopyDelete {
	w.t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: name}}
	if err := w.client.Create(w.ctx, s); err != nil {
		w.t.Fatal(err)
	}
	return planner.CopyDelete{Name: name, UID: string(s.UID), Owner: "acme", Why: "test"}
}

func (w *writerWorld) exists(name string) bool {
	err := w.client.Get(w.ctx, types.NamespacedName{Namespace: w.ns, Name: name}, &corev1.Secret{})
	return !apierrors.IsNotFound(err)
}

func (w *writerWorld) snapshot(sas ...*corev1.ServiceAccount) planner.Snapshot {
	s := planner.Snapshot{Namespace: planner.Namespace{Name: w.ns}}
	for _, sa := range sas {
		ps := planner.ServiceAccount{Name: sa.Name, UID: string(sa.UID), ResourceVersion: sa.ResourceVersion}
		if rec, err := ownership.ReadRecord(sa, w.key); err == nil {
			ps.Record = rec
		}
		s.ServiceAccounts = append(s.ServiceAccounts, ps)
	}
	return s
}

// An edit applied to another version of its ServiceAccount than the one
// planned on is made, but stops the plan: what comes after it assumed the
// list the plan saw.
func TestAnEditAppliedToANewerVersionStopsThePlan(t *testing.T) {
	w := newWriterWorld(t)
	planned := w.serviceAccount("default")
	s := w.snapshot(planned)
	// Someone writes the ServiceAccount between the plan and the write.
	newer := planned.DeepCopy()
	newer.Labels = map[string]string{"edited": "by-someone"}
	if err := w.client.Update(w.ctx, newer); err != nil {
		t.Fatal(err)
	}
	del := w.plainSecret("old")
	p := planner.Plan{
		ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: string(planned.UID), ResourceVersion: planned.ResourceVersion,
			Attach: []planner.Attachment{{Secret: "x", By: "acme"}}}},
		DeleteCopies: []planner.CopyDelete{del},
	}
	out := w.writer(w.client).apply(w.ctx, s, w.key, p)
	if out.err != nil || !out.stale {
		t.Fatalf("err %v, stale %v: want a replan", out.err, out.stale)
	}
	if len(out.done.ServiceAccounts) != 1 || len(out.done.DeleteCopies) != 0 {
		t.Fatalf("done %+v: want the edit made and nothing after it", out.done)
	}
	if !slices.ContainsFunc(w.serviceAccount("default").ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == "x" }) {
		t.Fatal("the edit was not made")
	}
	if !w.exists("old") {
		t.Fatal("the plan went on after an edit of another version")
	}

	// Planned on the version it is applied to: the plan goes on.
	current := w.serviceAccount("default")
	p.ServiceAccounts[0].ResourceVersion = current.ResourceVersion
	p.ServiceAccounts[0].Attach[0].Secret = "y"
	out = w.writer(w.client).apply(w.ctx, w.snapshot(current), w.key, p)
	if out.err != nil || out.stale || len(out.done.DeleteCopies) != 1 || w.exists("old") {
		t.Fatalf("err %v, stale %v, done %+v", out.err, out.stale, out.done)
	}
}

// An edit of a ServiceAccount replaced since planning (another UID) is not
// made, not counted as done, and stops the plan.
func TestAnEditOfAReplacedServiceAccountIsNotCountedAsDone(t *testing.T) {
	w := newWriterWorld(t)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "app"}}
	if err := w.client.Create(w.ctx, sa); err != nil {
		t.Fatal(err)
	}
	s := w.snapshot(sa)
	// Restored from a backup: the same name, a new object.
	if err := w.client.Delete(w.ctx, sa); err != nil {
		t.Fatal(err)
	}
	if err := w.client.Create(w.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	del := w.plainSecret("old")
	p := planner.Plan{
		ServiceAccounts: []planner.Edit{{ServiceAccount: "app", UID: string(sa.UID), ResourceVersion: sa.ResourceVersion,
			Attach: []planner.Attachment{{Secret: "x", By: "acme"}}}},
		DeleteCopies: []planner.CopyDelete{del},
	}
	out := w.writer(w.client).apply(w.ctx, s, w.key, p)
	if out.err != nil || !out.stale || len(out.done.ServiceAccounts) != 0 || len(out.done.DeleteCopies) != 0 {
		t.Fatalf("err %v, stale %v, done %+v: want nothing done and a replan", out.err, out.stale, out.done)
	}
	if got := w.serviceAccount("app").ImagePullSecrets; len(got) != 0 {
		t.Fatalf("the new ServiceAccount was edited: %v", got)
	}
	if !w.exists("old") {
		t.Fatal("the plan went on")
	}
}

// A failed edit is reported against every ClusterPullSecret it affects:
// the one attaching, the one a name is handed to and the one letting it
// go, the one a detached name is recorded for.
func TestAFailedEditIsReportedAgainstEveryoneItAffects(t *testing.T) {
	w := newWriterWorld(t)
	sa := w.serviceAccount("default")
	for _, n := range []string{"old", "shared", "kept"} {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	ownership.WriteRecord(sa, w.key, map[string]string{"old": "a", "shared": "b", "kept": "c"})
	if err := w.client.Update(w.ctx, sa); err != nil {
		t.Fatal(err)
	}
	refusing, err := client.NewWithWatch(testcluster.Get(t).Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	cl := interceptor.NewClient(refusing, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			return apierrors.NewForbidden(corev1.Resource("serviceaccounts"), obj.GetName(), nil)
		},
	})
	p := planner.Plan{ServiceAccounts: []planner.Edit{{ServiceAccount: "default", UID: string(sa.UID), ResourceVersion: sa.ResourceVersion,
		Attach: []planner.Attachment{{Secret: "new", By: "e"}}, Reassign: []planner.Attachment{{Secret: "shared", By: "d"}},
		Detach: []string{"old"}}}}
	out := w.writer(cl).apply(w.ctx, w.snapshot(sa), w.key, p)
	if out.err == nil {
		t.Fatal("no error")
	}
	var got []string
	for cps := range out.failed {
		got = append(got, cps)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b", "d", "e"}) {
		t.Fatalf("failed for %v, want a, b, d and e (not c, whose name the edit leaves)", got)
	}
}

func TestPointerEscapesEachPart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		parts []string
		want  string
	}{
		{[]string{"data"}, "/data"},
		{[]string{"metadata", "annotations", "pullsecrets.dev/proof"}, "/metadata/annotations/pullsecrets.dev~1proof"},
		{[]string{"metadata", "labels", "a~b/c"}, "/metadata/labels/a~0b~1c"},
		{[]string{"metadata", "annotations", "~1"}, "/metadata/annotations/~01"},
	} {
		if got := pointer(tc.parts...); got != tc.want {
			t.Errorf("pointer(%q) = %q, want %q", tc.parts, got, tc.want)
		}
	}
}
