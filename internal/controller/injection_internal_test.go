package controller

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// The policy and its binding are watched once found: installing and
// removing them is seen at once, well within the 30 s of a poll, and the
// judgement is the same as by GET.
func TestThePodInjectionPolicyIsWatched(t *testing.T) {
	c := testcluster.Get(t)
	ctx := testcluster.Context(t)
	cl, err := client.New(c.Config, client.Options{Scheme: testScheme()})
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	// The shipped objects under a name of this test's, bound to no
	// namespace so that no other test's Pods are touched.
	name := "watched-" + c.Namespace(t)
	raw, err := os.ReadFile("../../config/pod-injection/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		u.SetName(name)
		if u.GetKind() == "MutatingAdmissionPolicyBinding" {
			_ = unstructured.SetNestedField(u.Object, name, "spec", "policyName")
			_ = unstructured.SetNestedField(u.Object, map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"no-namespace-has": name}}}, "spec", "matchResources")
		}
		objs = append(objs, u)
	}

	p := newInjectionPolicy(name, cl, disco, dyn)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = p.Start(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	wait := func(want bool, what string) {
		t.Helper()
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			if ok, _ := p.state(); ok == want {
				t.Logf("%s: seen after %v", what, time.Since(start))
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		ok, why := p.state()
		t.Fatalf("%s: available %v (%s) after 10 s", what, ok, why)
	}
	wait(false, "nothing installed")
	time.Sleep(time.Second) // the watch has synced: what follows is seen through it
	for _, u := range objs {
		if err := cl.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	wait(true, "the policy and its binding installed")
	if ok, why := p.check(ctx, objs[0].GroupVersionKind().GroupVersion()); !ok {
		t.Fatalf("by GET: %s", why)
	}
	if err := cl.Delete(ctx, objs[1]); err != nil {
		t.Fatal(err)
	}
	wait(false, "the binding removed")
	if _, why := p.state(); !strings.Contains(why, "MutatingAdmissionPolicyBinding "+name+" is not installed") {
		t.Fatalf("why: %s", why)
	}
	if err := cl.Delete(ctx, objs[0]); err != nil {
		t.Fatal(err)
	}
}
