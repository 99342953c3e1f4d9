package restart_test

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/serviceaccount"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/kubeletsim"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	// kube-controller-manager: ReplicaSets recreate the deleted Pods.
	testcluster.Main(m, testcluster.Options{ControllerManager: true})
}

const image = "registry.example.com/shop/web:1.0"

func pullSecret(ns, name, server string) *corev1.Secret {
	data, err := credentials.Build(server, "ci-bot", "restart-Pa55word", "")
	if err != nil {
		panic(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: data}}
}

func deployment(ns, name string, pullSecrets ...string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
			},
		},
	}
	for _, s := range pullSecrets {
		d.Spec.Template.Spec.ImagePullSecrets = append(d.Spec.Template.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
	}
	return d
}

// podOf waits for the Pod of a Deployment (other than not).
func podOf(t *testing.T, client kubernetes.Interface, ns, app, not string) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	NewWithT(t).Eventually(func() bool {
		list, err := client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return false
		}
		for i := range list.Items {
			if p := &list.Items[i]; p.Name != not && p.DeletionTimestamp == nil {
				found = p
				return true
			}
		}
		return false
	}).WithTimeout(time.Minute).WithPolling(100 * time.Millisecond).Should(BeTrue())
	return found
}

func TestRestartDeletesOnlyPodsARestartFixes(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	client := c.Client
	for _, s := range []*corev1.Secret{pullSecret(ns, "regcred", "registry.example.com"), pullSecret(ns, "team", "other.example.com")} {
		_, err := client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	// Before the ServiceAccount has the secret: a Deployment's Pod, a bare
	// Pod, and a Deployment whose template lists a pull secret of its own.
	for _, d := range []*appsv1.Deployment{deployment(ns, "web"), deployment(ns, "templ", "team")} {
		_, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	bare, err := client.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bare"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: image}}},
	}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	web, templ := podOf(t, client, ns, "web", ""), podOf(t, client, ns, "templ", "")
	for _, p := range []*corev1.Pod{web, templ, bare} {
		_, err := kubeletsim.FailPull(ctx, client, p, kubeletsim.Options{Cause: kubeletsim.Unauthorized, BackOff: true})
		g.Expect(err).NotTo(HaveOccurred())
	}
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	_, _, err = serviceaccount.Update(ctx, serviceaccount.ClientsetStore{Client: client}, sa, func(sa *corev1.ServiceAccount) (bool, error) {
		return serviceaccount.Attach(sa, "regcred"), nil
	})
	g.Expect(err).NotTo(HaveOccurred())

	dry := clitest.Run(t, c.Kubeconfig, "", "restart", "-n", ns, "--dry-run")
	g.Expect(dry.Code).To(Equal(0), dry.Stderr)
	golden(t, "dry-run", normalise(dry.Stdout, ns, web.Name, templ.Name))
	_, err = client.CoreV1().Pods(ns).Get(ctx, web.Name, metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred(), "a dry run deletes nothing")

	res := clitest.Run(t, c.Kubeconfig, "", "restart", "-n", ns, "-o", "name")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("pod/"+web.Name+"\n"), "-o name: the Pods deleted")
	golden(t, "restart", normalise(res.Stderr, ns, web.Name, templ.Name))

	replacement := podOf(t, client, ns, "web", web.Name)
	g.Expect(replacement.Spec.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "regcred"}}), "admission gave the new Pod the ServiceAccount's list")
	for _, kept := range []string{bare.Name, templ.Name} {
		_, err := client.CoreV1().Pods(ns).Get(ctx, kept, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred(), kept)
	}

	// The replacement is not stuck yet: nothing left to do.
	again := clitest.Run(t, c.Kubeconfig, "", "restart", "-n", ns)
	g.Expect(again.Stdout).NotTo(ContainSubstring("deleted"))
}

func TestRestartNothingStuck(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	res := clitest.Run(t, c.Kubeconfig, "", "restart", "-n", ns)
	g.Expect(res.Code).To(Equal(0))
	g.Expect(res.Stdout).To(BeEmpty())
	g.Expect(res.Stderr).To(Equal("No Pod is stuck on an image pull in namespace \""+ns+"\".\n"), "the summary goes to stderr")
}

// normalise replaces the generated names.
func normalise(out, ns, web, templ string) string {
	out = strings.ReplaceAll(out, ns, "NAMESPACE")
	out = strings.ReplaceAll(out, web, "web-RS-POD")
	out = strings.ReplaceAll(out, templ, "templ-RS-POD")
	return regexp.MustCompile(`(web|templ)-[a-z0-9]{8,10}\b`).ReplaceAllString(out, "$1-RS")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	clitest.Golden(t, filepath.Join("testdata", name+".golden"), got)
}
