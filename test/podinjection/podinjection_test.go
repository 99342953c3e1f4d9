// Package podinjection proves the shipped MutatingAdmissionPolicy of Pods
// mode (config/pod-injection) against the real API server: for random
// ClusterPullSecrets, namespaces, ServiceAccounts and images, the names the
// API server adds to a Pod are exactly those the Go rules (package
// selection for the selection, package injection for the registries, the
// kubelet's matching) say, so the CEL and the controller never disagree.
package podinjection

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/injection"
	"github.com/pullsecrets/pullsecrets/internal/manager"
	"github.com/pullsecrets/pullsecrets/internal/selection"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{CRDPaths: []string{"../../config/crd/bases"}})
}

func install(t *testing.T, c client.Client) {
	t.Helper()
	raw, err := os.ReadFile("../../config/pod-injection/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := c.Create(context.Background(), &u); err != nil {
			t.Fatal(err)
		}
	}
}

// world is what the random ClusterPullSecrets are checked against.
type world struct {
	namespaces map[string]map[string]string // name -> labels
	accounts   []string
}

type candidate struct {
	name    string
	spec    v1alpha1.ClusterPullSecretSpec
	regs    []v1alpha1.InjectionRegistry
	hub     bool
	sel     *selection.Selector
	skipped []string
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func randomSpec(rng *rand.Rand) v1alpha1.ClusterPullSecretSpec {
	spec := v1alpha1.ClusterPullSecretSpec{AttachTo: v1alpha1.AttachToPods}
	if rng.IntN(2) == 0 {
		spec.Namespaces.Include = []string{pick(rng, "team-*", "shop-?", "team-a-x", "*-b*", "t?am-*")}
	}
	if rng.IntN(3) == 0 {
		spec.Namespaces.Exclude = []string{pick(rng, "team-b*", "*x", "shop-1")}
	}
	switch rng.IntN(4) {
	case 0:
		spec.Namespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": pick(rng, "gold", "silver")}}
	case 1:
		op := pick(rng, metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist)
		e := metav1.LabelSelectorRequirement{Key: pick(rng, "tier", "env"), Operator: op}
		if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
			e.Values = []string{pick(rng, "gold", "prod"), pick(rng, "silver", "dev")}
		}
		spec.Namespaces.Selector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{e}}
	}
	if rng.IntN(2) == 0 {
		spec.ServiceAccounts.Names = []string{pick(rng, "default", "build*", "app.*", "web-?")}
	}
	return spec
}

func randomKeys(rng *rand.Rand) []string {
	keys := []string{pick(rng, "registry.example.com", "*.pkg.example.dev", "reg.example.com:5000", "registry.example.com/team",
		"https://index.docker.io/v1/", "docker.io/library", "localhost:5000", "quay.io")}
	if rng.IntN(2) == 0 {
		keys = append(keys, pick(rng, "*.azurecr.io", "ghcr.io/org", "r*.example.com"))
	}
	return keys
}

func randomImage(rng *rand.Rand) string {
	return pick(rng, "registry.example.com/team/app:1", "registry.example.com/other/app", "registry.example.com:5000/x",
		"eu.pkg.example.dev/p/r/img:2", "a.b.pkg.example.dev/x", "reg.example.com:5000/team/app@sha256:"+strings.Repeat("c", 64),
		"nginx:1.27", "team/app", "docker.io/library/redis", "index.docker.io/team/x", "localhost:5000/app", "localhost/app",
		"quay.io/prometheus/node-exporter", "my.azurecr.io/app", "ghcr.io/org/tool:3", "ghcr.io/other/tool", "rx.example.com/y")
}

// keysOf normalises keys as the kubelet does, through a keyring.
func keysOf(t *testing.T, keys []string) []string {
	t.Helper()
	var auths []string
	for _, k := range keys {
		auths = append(auths, fmt.Sprintf("%q:{\"auth\":\"dXNlcjpwYXNz\"}", k))
	}
	k := credentials.NewKeyring([]credentials.Secret{{Name: "s", Type: credentials.TypeDockerConfigJSON,
		Data: map[string][]byte{credentials.KeyDockerConfigJSON: []byte(`{"auths":{` + strings.Join(auths, ",") + `}}`)}}})
	return k.Keys()
}

// want is the names the Go rules add to a Pod.
func (w *world) want(cands []candidate, ns, sa string, images []string) []string {
	var out []string
	for _, c := range cands {
		if !c.sel.NamespaceMeta(ns, w.namespaces[ns], nil) || !c.sel.ServiceAccountMeta(sa, nil, nil) || slices.Contains(c.skipped, ns+"/"+sa) {
			continue
		}
		if slices.ContainsFunc(images, func(img string) bool { return injection.Matches(c.regs, c.hub, img) }) {
			out = append(out, c.name)
		}
	}
	slices.Sort(out)
	return out
}

func TestPolicyDecidesAsTheGoRules(t *testing.T) {
	c := testcluster.Get(t)
	cl, err := client.New(c.Config, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testcluster.Context(t)
	install(t, cl)
	rng := rand.New(rand.NewPCG(2026, 12))
	w := &world{namespaces: map[string]map[string]string{}, accounts: []string{"default", "builder", "app.web", "web-1"}}
	suffix := fmt.Sprintf("%04x", rng.IntN(1<<16))
	for _, base := range []string{"team-a-x", "team-b", "shop-1", "shop-22", "tram-x", "other"} {
		name := base + "-" + suffix
		if base == "team-a-x" || base == "shop-1" {
			name = base // exact names for exact globs
		}
		labels := map[string]string{}
		if rng.IntN(2) == 0 {
			labels["tier"] = pick(rng, "gold", "silver")
		}
		if rng.IntN(2) == 0 {
			labels["env"] = pick(rng, "prod", "dev")
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		if err := cl.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		for _, sa := range w.accounts {
			if err := cl.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: sa}}); err != nil {
				t.Fatal(err)
			}
		}
		w.namespaces[name] = labels
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range w.namespaces {
			if !yield(n) {
				return
			}
		}
	})

	var cands []candidate
	for i := range 40 {
		cand := candidate{name: fmt.Sprintf("inj-%s-%d", suffix, i), spec: randomSpec(rng)}
		cand.regs, cand.hub, _ = injection.Registries(keysOf(t, randomKeys(rng)))
		if cand.sel, err = selection.New(&cand.spec); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(3) == 0 {
			cand.skipped = []string{pick(rng, names...) + "/" + pick(rng, w.accounts...)}
		}
		cps := &v1alpha1.ClusterPullSecret{ObjectMeta: metav1.ObjectMeta{Name: cand.name}, Spec: cand.spec}
		cps.Spec.Source = v1alpha1.SourceReference{Namespace: "default", Name: "regcred"}
		if err := cl.Create(ctx, cps); err != nil {
			t.Fatalf("create %s: %v", cand.name, err)
		}
		now := metav1.Now()
		cps.Status.Injection = &v1alpha1.InjectionStatus{SecretName: cand.name, Registries: cand.regs, DockerHub: cand.hub,
			SkipServiceAccounts: cand.skipped, Since: &now}
		if err := cl.Status().Update(ctx, cps); err != nil {
			t.Fatalf("publish the injection of %s: %v", cand.name, err)
		}
		cands = append(cands, cand)
		t.Cleanup(func() { _ = cl.Delete(context.Background(), cps) })
	}

	injected, trials := 0, 0
	for trial := range 1000 {
		ns := pick(rng, names...)
		sa := pick(rng, w.accounts...)
		images := []string{randomImage(rng)}
		if rng.IntN(3) == 0 {
			images = append(images, randomImage(rng))
		}
		want := w.want(cands, ns, sa, images)
		var got []string
		// The API server reads its params through a watch: a mismatch is
		// tried again for a few seconds before it counts.
		for attempt := 0; attempt < 20; attempt++ {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%d", trial)}, Spec: corev1.PodSpec{ServiceAccountName: sa}}
			for i, img := range images {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
			}
			if err := cl.Create(ctx, pod, client.DryRunAll); err != nil {
				t.Fatalf("trial %d: create Pod in %s as %s: %v", trial, ns, sa, err)
			}
			got = []string{}
			for _, r := range pod.Spec.ImagePullSecrets {
				got = append(got, r.Name)
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: namespace %s (labels %v), ServiceAccount %s, images %v: the API server added %v, the Go rules say %v",
				trial, ns, w.namespaces[ns], sa, images, got, want)
		}
		trials++
		injected += len(got)
	}
	t.Logf("%d Pods, %d names injected by %d ClusterPullSecrets", trials, injected, len(cands))
	if injected < 50 || injected > trials*len(cands)-50 {
		t.Fatalf("the cases say little: %d injections in %d Pods", injected, trials)
	}
}
