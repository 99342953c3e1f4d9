package controller

import (
	"context"
	"errors"
	"slices"
	"testing"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// Planning every namespace again is one request of the namespace
// controller's queue: a list that fails is the reconcile's error, which
// the queue retries with backoff; nothing is dropped.
func TestWakingEverythingIsRetriedUntilItWorks(t *testing.T) {
	c := testcluster.Get(t)
	ns := c.Namespace(t)
	base, err := client.NewWithWatch(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	failures := 1
	cl := interceptor.NewClient(base, interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if failures > 0 {
				failures--
				return errors.New("the cache is not started")
			}
			return c.List(ctx, list, opts...)
		},
	})
	var planned, reported []string
	r := &namespaceReconciler{
		client: cl, read: &reader{cps: newCPSCache(cl)},
		enqueue: func(ns string) { planned = append(planned, ns) },
		notify:  func(cps string) { reported = append(reported, cps) },
	}
	if _, err := r.Reconcile(testcluster.Context(t), everythingRequest); err == nil {
		t.Fatal("a failed list was swallowed")
	}
	if len(planned) != 0 {
		t.Fatalf("planned %v after a failed list", planned)
	}
	res, err := r.Reconcile(testcluster.Context(t), everythingRequest)
	if err != nil || res != (ctrl.Result{}) {
		t.Fatalf("retry: %v %v", res, err)
	}
	if !slices.Contains(planned, ns) {
		t.Fatalf("namespace %s not planned again: %v", ns, planned)
	}
	if everythingRequest != (reconcile.Request{}) {
		t.Fatalf("the request for everything names a namespace: %v", everythingRequest)
	}
}
