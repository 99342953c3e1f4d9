// Package deploytest renders the shipped manifests (kustomize through
// krusty, the chart through bin/helm) and applies them to the test cluster,
// for the packages under test/.
package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pullsecrets/pullsecrets/internal/manager"
)

// Root is the repository's root folder.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Kustomize builds a folder of the repository (e.g. "config/default"), with
// the given components (e.g. "config/rbac-restart-pods") added as a user's
// overlay would.
func Kustomize(t testing.TB, dir string, components ...string) []byte {
	t.Helper()
	root, err := filepath.Abs(Root(t))
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, dir)
	if len(components) > 0 {
		target = t.TempDir()
		// kustomize takes relative paths only.
		rel := func(p string) string {
			r, err := filepath.Rel(target, filepath.Join(root, p))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		var k strings.Builder
		fmt.Fprintf(&k, "resources:\n  - %s\ncomponents:\n", rel(dir))
		for _, c := range components {
			fmt.Fprintf(&k, "  - %s\n", rel(c))
		}
		if err := os.WriteFile(filepath.Join(target, "kustomization.yaml"), []byte(k.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = 0 // LoadRestrictionsNone: the overlay lives in a temporary folder
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), target)
	if err != nil {
		t.Fatalf("kustomize build %s %v: %v", dir, components, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// HelmTemplate renders the chart as release "pullsecrets" in namespace.
func HelmTemplate(t testing.TB, namespace string, args ...string) []byte {
	t.Helper()
	out, err := TryHelmTemplate(t, namespace, args...)
	if err != nil {
		t.Fatalf("helm template: %v: %s", err, out)
	}
	return out
}

// TryHelmTemplate is HelmTemplate for a rendering that may fail: it returns
// helm's error and, then, what it printed on stderr.
func TryHelmTemplate(t testing.TB, namespace string, args ...string) ([]byte, error) {
	t.Helper()
	root := Root(t)
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		if testing.Short() {
			// make test-short runs on a fresh clone, before any make tools.
			t.Skip("bin/helm is missing (make tools builds it; make test does): skipped with -short")
		}
		t.Fatalf("bin/helm is missing: run `make tools` (make test does)")
	}
	cmd := exec.Command(helm, append([]string{"template", "pullsecrets", filepath.Join(root, "charts", "pullsecrets"), "--namespace", namespace, "--include-crds"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.Bytes(), err
	}
	return out, nil
}

// Decode splits multi-document YAML into objects.
func Decode(t testing.TB, manifests []byte) []*unstructured.Unstructured {
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

// Find returns the objects of a kind.
func Find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Apply server-side applies the objects, namespaces and CRDs first as
// kubectl apply does.
func Apply(t testing.TB, c client.Client, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	first := func(o *unstructured.Unstructured) bool {
		return o.GetKind() == "Namespace" || o.GetKind() == "CustomResourceDefinition"
	}
	objs = slices.Clone(objs)
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
		o = o.DeepCopy()
		o.SetManagedFields(nil)
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("deploy-test"), client.ForceOwnership)
			// A custom resource right after its CRD: the API is not served yet.
			if err != nil && o.GetKind() != "CustomResourceDefinition" && strings.Contains(err.Error(), "no matches for kind") {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			t.Fatalf("apply %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// Delete deletes the objects of the given kinds (all when none are given)
// and waits until they are gone.
func Delete(t testing.TB, c client.Client, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		if len(kinds) > 0 && !slices.Contains(kinds, o.GetKind()) {
			continue
		}
		if err := c.Delete(ctx, o.DeepCopy()); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("delete %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}

// Client is a client of the cluster as config's identity.
func Client(t testing.TB, config *rest.Config) client.Client {
	t.Helper()
	c, err := client.New(config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Impersonate returns a copy of admin that acts as user (with groups).
func Impersonate(admin *rest.Config, user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// AggregateBuiltinRoles fills the aggregated ClusterRoles admin, edit and
// view from the ClusterRoles their aggregationRule selects, as
// kube-controller-manager's clusterrole-aggregation loop does: the test
// control plane does not run that loop, and without it admin grants nothing.
func AggregateBuiltinRoles(t testing.TB, c client.Client) {
	t.Helper()
	ctx := context.Background()
	// view feeds edit, which feeds admin.
	for _, name := range []string{"view", "edit", "admin"} {
		var role rbacv1.ClusterRole
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &role); err != nil {
			t.Fatal(err)
		}
		var rules []rbacv1.PolicyRule
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				t.Fatal(err)
			}
			var parts rbacv1.ClusterRoleList
			if err := c.List(ctx, &parts, client.MatchingLabelsSelector{Selector: s}); err != nil {
				t.Fatal(err)
			}
			for _, p := range parts.Items {
				if p.Name != name {
					rules = append(rules, p.Rules...)
				}
			}
		}
		if len(rules) == 0 {
			t.Fatalf("ClusterRole %s aggregates nothing", name)
		}
		role.Rules = rules
		if err := c.Update(ctx, &role); err != nil {
			t.Fatalf("aggregate ClusterRole %s: %v", name, err)
		}
	}
}
