package controller

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
)

// A ClusterPullSecret is decoded once per resourceVersion, whichever of get
// and list reads it: the namespace plans read it for every report.
func TestClusterPullSecretsAreDecodedOncePerVersion(t *testing.T) {
	ctx := context.Background()
	cps := &v1alpha1.ClusterPullSecret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred", UID: "uid-1"},
		Spec:       v1alpha1.ClusterPullSecretSpec{SecretName: "one"},
	}
	cl := fake.NewClientBuilder().WithScheme(testScheme()).WithObjects(cps).Build()
	c := newCPSCache(cl)

	first, u, err := c.get(ctx, "regcred")
	if err != nil {
		t.Fatal(err)
	}
	if first.obj == nil || first.plan.SecretName != "one" {
		t.Fatalf("decoded %+v", first.plan)
	}
	again, _, err := c.get(ctx, "regcred")
	if err != nil {
		t.Fatal(err)
	}
	listed, err := c.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.obj != first.obj || len(listed) != 1 || listed[0].obj != first.obj {
		t.Fatal("the same version was decoded again")
	}

	var live v1alpha1.ClusterPullSecret
	if err := cl.Get(ctx, client.ObjectKey{Name: "regcred"}, &live); err != nil {
		t.Fatal(err)
	}
	live.Spec.SecretName = "two"
	if err := cl.Update(ctx, &live); err != nil {
		t.Fatal(err)
	}
	changed, u2, err := c.get(ctx, "regcred")
	if err != nil {
		t.Fatal(err)
	}
	if changed.obj == first.obj || changed.plan.SecretName != "two" {
		t.Fatalf("a new version was not decoded: %+v", changed.plan)
	}
	if u.GetResourceVersion() == u2.GetResourceVersion() {
		t.Fatal("the update did not change the resourceVersion")
	}
	if first.plan.SecretName != "one" {
		t.Fatal("the earlier decoded version changed")
	}
}
