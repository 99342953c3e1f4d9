package attach_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/api/v1alpha1"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

func names(t *testing.T, client kubernetes.Interface, ns, sa string) []string {
	t.Helper()
	obj, err := client.CoreV1().ServiceAccounts(ns).Get(context.Background(), sa, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, r := range obj.ImagePullSecrets {
		out = append(out, r.Name)
	}
	return out
}

func setList(t *testing.T, client kubernetes.Interface, ns, name string, list ...string) {
	t.Helper()
	ctx := context.Background()
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa.ImagePullSecrets = nil
	for _, n := range list {
		sa.ImagePullSecrets = append(sa.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	if _, err := client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func secret(t *testing.T, client kubernetes.Interface, ns, name string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
	if _, err := client.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestAttachDetachKeepForeignEntries(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	secret(t, c.Client, ns, "regcred")
	setList(t, c.Client, ns, "default", "theirs", "other")

	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("serviceaccount/default attached\n"))
	g.Expect(res.Stderr).To(BeEmpty())
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"theirs", "other", "regcred"}))

	again := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns)
	g.Expect(again.Stdout).To(Equal("serviceaccount/default unchanged\n"))

	det := clitest.Run(t, c.Kubeconfig, "", "detach", "regcred", "-n", ns)
	g.Expect(det.Code).To(Equal(0), det.Stderr)
	g.Expect(det.Stdout).To(Equal("serviceaccount/default detached\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"theirs", "other"}))

	det = clitest.Run(t, c.Kubeconfig, "", "detach", "regcred", "-n", ns)
	g.Expect(det.Stdout).To(Equal("serviceaccount/default unchanged\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"theirs", "other"}))
}

// TestAttachIsAllOrNothing: a ServiceAccount named that does not exist,
// a namespace that does not exist, or a Secret of that name that is not a
// pull secret, stops attach before it writes anything; a missing Secret
// only warns.
func TestAttachIsAllOrNothing(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns, "--service-account", "default", "--service-account", "ghost")
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stdout).To(BeEmpty())
	g.Expect(res.Stderr).To(Equal("error: ServiceAccount " + ns + "/ghost does not exist; nothing was written\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(BeEmpty(), "default was not attached either")

	nope := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", "no-such-namespace-x")
	g.Expect(nope.Code).To(Equal(1))
	g.Expect(nope.Stderr).To(Equal("error: namespace \"no-such-namespace-x\" does not exist\n"))

	opaque := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plain"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"x": []byte("y")}}
	_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, opaque, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	wrong := clitest.Run(t, c.Kubeconfig, "", "attach", "plain", "-n", ns)
	g.Expect(wrong.Code).To(Equal(1))
	g.Expect(wrong.Stderr).To(ContainSubstring("error: secret " + ns + "/plain is not of type kubernetes.io/dockerconfigjson or kubernetes.io/dockercfg: the kubelet would read no credentials from it"))
	g.Expect(wrong.Stderr).To(HaveSuffix("; nothing was written\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(BeEmpty())

	warn := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns)
	g.Expect(warn.Code).To(Equal(0))
	g.Expect(warn.Stdout).To(Equal("serviceaccount/default attached\n"))
	g.Expect(warn.Stderr).To(Equal("warning: Secret " + ns + "/regcred does not exist: Pods of ServiceAccount default pull without it until it does\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"regcred"}))
}

// TestAttachScopes: -l selects ServiceAccounts by label and combines with
// -n; -A leaves out the system namespaces; a scope that matches nothing is
// an error; -o name prints what changed and moves the lines to stderr; the
// field manager is recorded.
func TestAttachScopes(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	secret(t, c.Client, ns, "regcred")
	for _, sa := range []*corev1.ServiceAccount{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: map[string]string{"tier": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: map[string]string{"tier": "db"}}},
	} {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns, "-l", "tier=web", "-o", "name", "--field-manager", "team-ci")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("serviceaccount/web\n"))
	g.Expect(res.Stderr).To(Equal("serviceaccount/web attached\n"), "with -o the lines go to stderr")
	g.Expect(names(t, c.Client, ns, "web")).To(Equal([]string{"regcred"}))
	g.Expect(names(t, c.Client, ns, "db")).To(BeEmpty())
	g.Expect(names(t, c.Client, ns, "default")).To(BeEmpty(), "-l replaces the default ServiceAccount")
	web, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "web", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(web.ManagedFields).To(ContainElement(HaveField("Manager", "team-ci")))

	none := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns, "-l", "tier=cache")
	g.Expect(none.Code).To(Equal(1))
	g.Expect(none.Stderr).To(ContainSubstring(`no ServiceAccount to attach: no ServiceAccounts matching tier=cache in namespace "` + ns + `"`))

	// -A never reaches the system namespaces: a server dry run, so that the
	// run can be checked without changing the shared control plane.
	all := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-A", "--dry-run=server")
	g.Expect(all.Code).To(Equal(0), all.Stderr)
	g.Expect(all.Stderr).To(ContainSubstring("note: left out the system namespaces kube-node-lease, kube-public, kube-system; name one with -n to include it"))
	for _, system := range []string{"kube-system", "kube-public", "kube-node-lease"} {
		g.Expect(all.Stdout).NotTo(ContainSubstring("in namespace "+system+"\n"), system)
	}
	g.Expect(all.Stdout).To(ContainSubstring("serviceaccount/default attached in namespace " + ns + " (server dry run)\n"))
	// Named with -n, a system namespace is in scope: here it has no
	// default ServiceAccount (no kube-controller-manager makes one).
	named := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", "kube-public", "--dry-run=server")
	g.Expect(named.Code).To(Equal(1), named.Stdout)
	g.Expect(named.Stderr).To(Equal("error: ServiceAccount kube-public/default does not exist; nothing was written\n"))
}

// TestDetachSaysWhatStillUsesTheSecret: detach never deletes the Secret;
// it says what still uses it (a Deployment at zero replicas whose template
// lists it, a live Pod) by the controller's rules, and how to finish.
func TestDetachSaysWhatStillUsesTheSecret(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	secret(t, c.Client, ns, "regcred")
	setList(t, c.Client, ns, "default", "regcred")
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}, Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web"}}}}},
	}
	_, err := c.Client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := clitest.Run(t, c.Kubeconfig, "", "detach", "regcred", "-n", ns)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("serviceaccount/default detached\n"))
	g.Expect(res.Stderr).To(Equal("note: Secret " + ns + "/regcred is still used by Deployment web, so it stays; once nothing uses it, delete it: kubectl -n " + ns + " delete secret regcred\n"))
	_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "detach never deletes the Secret")

	g.Expect(c.Client.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{})).To(Succeed())
	setList(t, c.Client, ns, "default", "regcred")
	again := clitest.Run(t, c.Kubeconfig, "", "detach", "regcred", "-n", ns)
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stderr).To(Equal("note: nothing in namespace " + ns + " uses Secret regcred any more; delete it if nothing else needs it: kubectl -n " + ns + " delete secret regcred\n"))
}

func TestDetachWarnsWhenAClusterPullSecretAttachedIt(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "theirs"}, {Name: "regcred"}}
	sa.Annotations = map[string]string{v1alpha1.AttachedAnnotation: `{"regcred":"registry-example-com"}`}
	_, err = c.Client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := clitest.Run(t, c.Kubeconfig, "", "detach", "regcred", "-n", ns)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("serviceaccount/default detached\n"))
	g.Expect(res.Stderr).To(Equal("warning: ClusterPullSecret registry-example-com attached regcred to ServiceAccount " + ns +
		"/default and will attach it again: change the ClusterPullSecret's namespaces or serviceAccounts instead\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"theirs"}))
}

func TestAttachAcrossNamespacesWithDryRuns(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	team := "attach-" + rand.String(6)
	var nss []string
	for range 3 {
		nss = append(nss, c.Namespace(t, map[string]string{"team": team}))
	}
	sort.Strings(nss)
	secret(t, c.Client, nss[0], "regcred")
	for _, mode := range []string{"client", "server"} {
		res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "--namespace-selector", "team="+team, "--dry-run="+mode)
		g.Expect(res.Code).To(Equal(0), res.Stderr)
		g.Expect(strings.Count(res.Stdout, "attached in namespace")).To(Equal(3))
		for _, ns := range nss {
			g.Expect(names(t, c.Client, ns, "default")).To(BeEmpty(), "a dry run changes nothing")
		}
	}
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "--namespace-selector", "team="+team)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	want := ""
	for _, ns := range nss {
		want += "serviceaccount/default attached in namespace " + ns + "\n"
	}
	g.Expect(res.Stdout).To(Equal(want), "sorted by namespace")
	g.Expect(strings.Count(res.Stderr, "does not exist")).To(Equal(2), "two namespaces lack the Secret")
	for _, ns := range nss {
		g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"regcred"}))
	}
}

// TestAttachLosesNothingToAConcurrentWriter runs attach across namespaces
// while another writer keeps adding its own entries to the same
// ServiceAccounts: every entry of both must be there at the end.
func TestAttachLosesNothingToAConcurrentWriter(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	team := "race-" + rand.String(6)
	var nss []string
	for range 6 {
		ns := c.Namespace(t, map[string]string{"team": team})
		secret(t, c.Client, ns, "regcred")
		nss = append(nss, ns)
	}
	const rounds = 5
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, ns := range nss {
		wg.Go(func() {
			<-start
			for i := range rounds {
				sa, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				_, _, err = serviceaccount.Update(ctx, serviceaccount.ClientsetStore{Client: c.Client}, sa, func(sa *corev1.ServiceAccount) (bool, error) {
					return serviceaccount.Attach(sa, fmt.Sprintf("theirs-%d", i)), nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "--namespace-selector", "team="+team)
	wg.Wait()
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	for _, ns := range nss {
		got := names(t, c.Client, ns, "default")
		g.Expect(got).To(ContainElement("regcred"), ns)
		for i := range rounds {
			g.Expect(got).To(ContainElement(fmt.Sprintf("theirs-%d", i)), ns)
		}
		g.Expect(got).To(HaveLen(rounds + 1))
	}
}

func TestAttachUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"attach"},
		{"attach", "a", "b"},
		{"attach", "Bad_Name"},
		{"attach", "regcred", "-A", "--namespace-selector", "a=b"},
		{"attach", "regcred", "-n", "x", "-A"},
		{"attach", "regcred", "-l", "a in ("},
		{"attach", "secret/regcred", "--service-account", "pod/x"},
		{"attach", "configmap/regcred"},
		{"attach", "regcred", "--field-manager", ""},
		{"attach", "regcred", "-o", "bogus"},
		{"attach", "regcred", "--service-account", "x", "--all-service-accounts"},
		{"detach", "regcred", "--dry-run=sometimes"},
	} {
		res := clitest.Run(t, "", "", args...)
		if res.Code != 2 {
			t.Errorf("%v: exit status %d, want 2 (stderr %q)", args, res.Code, res.Stderr)
		}
	}
}
