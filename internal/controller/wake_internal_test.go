package controller

import (
	"context"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// Planning every namespace again is one request of the namespace
// controller's queue: a read that fails is the reconcile's error, which
// the queue retries with backoff; nothing is dropped.
func TestWakingEverythingIsRetriedUntilItWorks(t *testing.T) {
	c := testcluster.Get(t)
	ns := c.Namespace(t)
	ctx := testcluster.Context(t)
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	informers, err := cache.New(c.Config, cache.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := informers.GetInformer(ctx, &corev1.Namespace{}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		t.Fatal("the namespace cache did not sync")
	}
	var planned, reported []string
	r := &namespaceReconciler{
		client: cl, read: &reader{cps: newCPSCache(cl), namespaces: newNamespaceStore(&flakyInformers{Informers: informers, failures: 1})},
		enqueue: func(ns string) { planned = append(planned, ns) },
		notify:  func(cps string) { reported = append(reported, cps) },
	}
	if _, err := r.Reconcile(ctx, everythingRequest); err == nil {
		t.Fatal("a failed read was swallowed")
	}
	if len(planned) != 0 {
		t.Fatalf("planned %v after a failed read", planned)
	}
	res, err := r.Reconcile(ctx, everythingRequest)
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

// flakyInformers fails its first GetInformer calls, as a cache not started.
type flakyInformers struct {
	cache.Informers
	failures int
}

func (f *flakyInformers) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	if f.failures > 0 {
		f.failures--
		return nil, errors.New("the cache is not started")
	}
	return f.Informers.GetInformer(ctx, obj, opts...)
}
