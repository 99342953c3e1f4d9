package attach_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

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

func TestAttachWarnsWhenTheSecretIsMissing(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-n", ns, "--service-account", "default", "--service-account", "ghost")
	g.Expect(res.Code).To(Equal(0))
	g.Expect(res.Stdout).To(Equal("serviceaccount/default attached\n"))
	g.Expect(res.Stderr).To(Equal(
		"warning: ServiceAccount " + ns + "/ghost not found\n" +
			"warning: Secret " + ns + "/regcred does not exist: Pods of ServiceAccount default pull without it until it does\n"))
	g.Expect(names(t, c.Client, ns, "default")).To(Equal([]string{"regcred"}))
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
		res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-l", "team="+team, "--dry-run="+mode)
		g.Expect(res.Code).To(Equal(0), res.Stderr)
		g.Expect(strings.Count(res.Stdout, "attached in namespace")).To(Equal(3))
		for _, ns := range nss {
			g.Expect(names(t, c.Client, ns, "default")).To(BeEmpty(), "a dry run changes nothing")
		}
	}
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-l", "team="+team)
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
	res := clitest.Run(t, c.Kubeconfig, "", "attach", "regcred", "-l", "team="+team)
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
		{"attach", "regcred", "-A", "-l", "a=b"},
		{"attach", "regcred", "-l", "a in ("},
		{"attach", "regcred", "--service-account", "x", "--all-service-accounts"},
		{"detach", "regcred", "--dry-run=sometimes"},
	} {
		res := clitest.Run(t, "", "", args...)
		if res.Code != 2 {
			t.Errorf("%v: exit status %d, want 2 (stderr %q)", args, res.Code, res.Stderr)
		}
	}
}
