// Package deploy proves the deployment manifests against the real API
// server: the kustomize tree and the Helm chart are accepted, the
// controller's Pods are admitted under the restricted Pod Security
// Standard, and both grant exactly the same RBAC.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{ControllerManager: true})
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func helmTemplate(t *testing.T, namespace string, args ...string) []byte {
	t.Helper()
	helm, err := filepath.Abs("../../bin/helm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("bin/helm is missing: run `make tools` (make test does)")
	}
	cmd := exec.Command(helm, append([]string{"template", "pullsecrets", "../../charts/pullsecrets", "--namespace", namespace, "--include-crds"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v: %s", err, stderr.String())
	}
	return out
}

func decode(t *testing.T, manifests []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func apply(t *testing.T, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	// What others live in goes first, as kubectl apply does.
	first := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition"
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int {
		switch {
		case first(a) && !first(b):
			return -1
		case first(b) && !first(a):
			return 1
		}
		return 0
	})
	for _, o := range objs {
		o.SetManagedFields(nil)
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("deploy-test"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// controllerPodAdmitted waits until the Deployment's ReplicaSet has created
// a Pod: the namespace enforces the restricted Pod Security Standard, so a
// Pod exists only if its security context passes.
func controllerPodAdmitted(t *testing.T, c client.Client, namespace string) {
	t.Helper()
	NewWithT(t).Eventually(func() []corev1.Pod {
		var pods corev1.PodList
		_ = c.List(context.Background(), &pods, client.InNamespace(namespace), client.MatchingLabels{"app.kubernetes.io/name": "pullsecrets"})
		return pods.Items
	}).WithTimeout(time.Minute).ShouldNot(BeEmpty(), "no controller Pod admitted in %s (restricted Pod Security?)", namespace)
}

func newClient(t *testing.T, c *testcluster.Cluster) client.Client {
	t.Helper()
	cl, err := client.New(c.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestKustomizeDefaultInstalls(t *testing.T) {
	c := testcluster.Get(t)
	cl := newClient(t, c)
	apply(t, cl, decode(t, kustomize(t, "../../config/default")))
	controllerPodAdmitted(t, cl, "pullsecrets-system")
	apply(t, cl, decode(t, kustomize(t, "../../config/samples")))
}

func TestHelmChartInstallsWithTheSameRBAC(t *testing.T) {
	c := testcluster.Get(t)
	cl := newClient(t, c)
	g := NewWithT(t)
	ns := "pullsecrets-helm"
	extra := c.Namespace(t)
	g.Expect(cl.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: ns, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}})).To(Succeed())
	rendered := decode(t, helmTemplate(t, ns, "--set", "sourceNamespaces={"+extra+"}"))
	apply(t, cl, rendered)
	controllerPodAdmitted(t, cl, ns)

	// The chart's rules are the generated ones.
	kustomized := decode(t, kustomize(t, "../../config/rbac"))
	g.Expect(rules(t, rendered, "ClusterRole", "")).To(Equal(rules(t, kustomized, "ClusterRole", "")))
	g.Expect(rules(t, rendered, "Role", ns)).To(Equal(rules(t, kustomized, "Role", "pullsecrets-system")))
	sourceRules := rules(t, rendered, "Role", extra)
	g.Expect(sourceRules).To(HaveLen(1))
	g.Expect(sourceRules[0].Resources).To(Equal([]string{"secrets"}))
	g.Expect(sourceRules[0].Verbs).To(ConsistOf("get", "list", "watch"))
}

func rules(t *testing.T, objs []*unstructured.Unstructured, kind, namespace string) []rbacv1.PolicyRule {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != kind || o.GetNamespace() != namespace {
			continue
		}
		var r struct {
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		raw, _ := o.MarshalJSON()
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatal(err)
		}
		return r.Rules
	}
	t.Fatalf("no %s in namespace %q", kind, namespace)
	return nil
}
