package rename_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	testcluster.Main(m, testcluster.Options{})
}

func refs(names ...string) []corev1.LocalObjectReference {
	out := []corev1.LocalObjectReference{}
	for _, n := range names {
		out = append(out, corev1.LocalObjectReference{Name: n})
	}
	return out
}

func saList(t *testing.T, client kubernetes.Interface, ns, name string) []corev1.LocalObjectReference {
	t.Helper()
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sa.ImagePullSecrets == nil {
		return []corev1.LocalObjectReference{}
	}
	return sa.ImagePullSecrets
}

// fixture: Secret regcred; ServiceAccounts default [theirs, regcred] and
// builder [regcred]; Deployment web whose template lists regcred; a live
// bare Pod listing regcred.
func fixture(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred", Labels: map[string]string{"team": "shop"},
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example.com":{"auth":"dTpw"}}}`)}}
	must(t, func() error {
		_, err := client.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{})
		return err
	})
	sa, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	must(t, func() error { return err })
	sa.ImagePullSecrets = refs("theirs", "regcred")
	must(t, func() error {
		_, err := client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
		return err
	})
	builder := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}, ImagePullSecrets: refs("regcred")}
	must(t, func() error {
		_, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, builder, metav1.CreateOptions{})
		return err
	})
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				ImagePullSecrets: refs("other", "regcred"), Containers: []corev1.Container{{Name: "web", Image: "registry.example.com/web"}}}}},
	}
	must(t, func() error {
		_, err := client.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{})
		return err
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "runner"},
		Spec: corev1.PodSpec{ImagePullSecrets: refs("regcred"), Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/runner"}}}}
	must(t, func() error { _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); return err })
}

func must(t *testing.T, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatal(err)
	}
}

func TestRenameInTheControllersOrder(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	fixture(t, c.Client, ns)

	dry := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads", "--dry-run=server")
	g.Expect(dry.Code).To(Equal(0), dry.Stderr)
	g.Expect(saList(t, c.Client, ns, "default")).To(Equal(refs("theirs", "regcred")), "a dry run changes nothing")
	_, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "registry-creds", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal(`secret/registry-creds created (copy of regcred)
serviceaccount/builder regcred -> registry-creds
serviceaccount/default regcred -> registry-creds
deployment.apps/web patched (regcred -> registry-creds): this starts a rollout
secret/regcred kept: 1 live Pod lists it (runner); run this again once they are gone
`))
	g.Expect(saList(t, c.Client, ns, "default")).To(Equal(refs("theirs", "registry-creds")), "in place, others kept")
	g.Expect(saList(t, c.Client, ns, "builder")).To(Equal(refs("registry-creds")))
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(dep.Spec.Template.Spec.ImagePullSecrets).To(Equal(refs("other", "registry-creds")))
	cp, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "registry-creds", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp.Labels).To(HaveKeyWithValue("team", "shop"))
	g.Expect(cp.Annotations).NotTo(HaveKey("kubectl.kubernetes.io/last-applied-configuration"))

	g.Expect(c.Client.CoreV1().Pods(ns).Delete(ctx, "runner", metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})).To(Succeed())
	again := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns, "--update-workloads")
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stdout).To(Equal("secret/registry-creds unchanged\nsecret/regcred deleted\n"))
	_, err = c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())

	gone := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "registry-creds", "-n", ns)
	g.Expect(gone.Code).To(Equal(1))
	g.Expect(gone.Stderr).To(ContainSubstring("not found"))
}

func TestRenameRefusals(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)

	managed := c.Namespace(t)
	copyOf := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: managed, Name: "regcred",
		Labels: map[string]string{"app.kubernetes.io/managed-by": "pullsecrets", "pullsecrets.dev/cluster-pull-secret": "registry-example-com"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}
	_, err := c.Client.CoreV1().Secrets(managed).Create(ctx, copyOf, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	res := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", managed)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(ContainSubstring("is a copy made by ClusterPullSecret registry-example-com: change its spec.secretName instead"))

	clash := c.Namespace(t)
	fixture(t, c.Client, clash)
	other := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: clash, Name: "new"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"other.example.com":{"auth":"dTpw"}}}`)}}
	_, err = c.Client.CoreV1().Secrets(clash).Create(ctx, other, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	res = clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "new", "-n", clash)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(ContainSubstring("holds other credentials than regcred: nothing was changed"))
	g.Expect(saList(t, c.Client, clash, "default")).To(Equal(refs("theirs", "regcred")))

	keep := clitest.Run(t, c.Kubeconfig, "", "rename", "regcred", "kept", "-n", clash, "--keep-old")
	g.Expect(keep.Code).To(Equal(0), keep.Stderr)
	g.Expect(keep.Stdout).To(ContainSubstring("secret/regcred kept\n"))

	usage := clitest.Run(t, c.Kubeconfig, "", "rename", "same", "same")
	g.Expect(usage.Code).To(Equal(2))
}
