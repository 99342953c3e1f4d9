package match_test

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// pullSecret creates a kubectl-style docker-registry Secret.
func pullSecret(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name, server, username, password string) {
	t.Helper()
	data, err := credentials.Build(server, username, password, "")
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
	}
	if _, err := client.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// clusterFixture is a namespace with two pull secrets, a broken-for-the-
// kubelet one (valid JSON for the API server), and a ServiceAccount and a
// Pod that list some of them and one that does not exist.
func clusterFixture(t *testing.T) (c *testcluster.Cluster, ns string) {
	t.Helper()
	c = testcluster.Get(t)
	ns = c.Namespace(t)
	ctx := testcluster.Context(t)
	pullSecret(ctx, t, c.Client, ns, "hub", credentials.DefaultServer, "hub-robot", "hunter2-hub-cluster")
	pullSecret(ctx, t, c.Client, ns, "quay", "quay.io", "quay-robot", "hunter2-quay-cluster")
	bad := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"r.example.com":{"auth":"aHVudGVyMi1ub2NvbG9u"}}}`)},
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{
		ObjectMeta:       metav1.ObjectMeta{Name: "builder"},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "quay"}, {Name: ""}, {Name: "gone"}, {Name: "hub"}},
	}
	if _, err := c.Client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.PodSpec{
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "bad"}, {Name: "hub"}},
			Containers:       []corev1.Container{{Name: "web", Image: "nginx"}},
		},
	}
	if _, err := c.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c, ns
}

// TestClusterForms runs --secret, --service-account and --pod against a
// real API server.
func TestClusterForms(t *testing.T) {
	t.Parallel()
	c, ns := clusterFixture(t)

	t.Run("secrets in the namespace, a missing one skipped", func(t *testing.T) {
		g := NewWithT(t)
		res := run(t, c.Kubeconfig, "match", "nginx", "quay.io/coreos/etcd", "-n", ns, "--secret", "gone", "--secret", "quay", "--secret", "hub", "-o", "json")
		g.Expect(res.Code).To(Equal(0), res.Stderr)
		g.Expect(res.Stdout).To(Equal(strings.ReplaceAll(`{
    "kind": "MatchReport",
    "apiVersion": "cli.pullsecrets.dev/v1alpha1",
    "images": [
        {
            "image": "nginx",
            "credentials": [
                {
                    "secret": "NS/hub",
                    "registry": "https://index.docker.io/v1/",
                    "username": "hub-robot"
                }
            ]
        },
        {
            "image": "quay.io/coreos/etcd",
            "credentials": [
                {
                    "secret": "NS/quay",
                    "registry": "quay.io",
                    "username": "quay-robot"
                }
            ]
        }
    ],
    "findings": [
        {
            "secret": "NS/gone",
            "severity": "warning",
            "code": "MissingSecret",
            "message": "Secret NS/gone not found: the kubelet skips it and pulls with the other pull secrets (it records a FailedToRetrieveImagePullSecret event only when a pull fails)"
        }
    ]
}
`, "NS", ns)))
	})

	t.Run("service account, in its order", func(t *testing.T) {
		g := NewWithT(t)
		res := run(t, c.Kubeconfig, "match", "nginx", "quay.io/app", "ghcr.io/acme/app", "-n", ns, "--service-account", "builder")
		g.Expect(res.Code).To(Equal(1), res.Stderr)
		g.Expect(res.Stdout).To(HavePrefix(strings.ReplaceAll(`Pull secrets of ServiceAccount NS/builder, in the kubelet's order:
  NS/quay
  NS/gone (not found: the kubelet skips it)
  NS/hub

Image nginx (docker.io/library/nginx):
  TRY  SECRET`, "NS", ns)))
		g.Expect(res.Stdout).To(ContainSubstring("Image ghcr.io/acme/app (ghcr.io/acme/app):\n  no credential (DifferentHost, " + ns + "/quay)"))
		g.Expect(res.Stderr).To(Equal("1 of 3 images without a credential; 0 errors, 1 warning.\n"))
	})

	t.Run("pod, whose broken secret fails every pull", func(t *testing.T) {
		g := NewWithT(t)
		res := run(t, c.Kubeconfig, "match", "nginx", "-n", ns, "--pod", "web", "-o", "json")
		g.Expect(res.Code).To(Equal(1), res.Stderr)
		g.Expect(res.Stdout).To(HavePrefix(`{
    "kind": "MatchReport",
    "apiVersion": "cli.pullsecrets.dev/v1alpha1",
    "error": "pull secret ` + ns + `/bad: .dockerconfigjson: entry \"r.example.com\": auth does not decode to username:password (no ':'); the kubelet fails every image pull of the Pod",
    "images": [
        {
            "image": "nginx",
            "credentials": []
        }
    ],`))
	})

	t.Run("the namespace from the kubeconfig when -n is not given", func(t *testing.T) {
		g := NewWithT(t)
		res := run(t, c.Kubeconfig, "match", "nginx", "--secret", "hub")
		g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("default/hub (not found: the kubelet skips it)"))
	})

	t.Run("a missing ServiceAccount or Pod is an error", func(t *testing.T) {
		g := NewWithT(t)
		sa := run(t, c.Kubeconfig, "match", "nginx", "-n", ns, "--service-account", "nobody")
		g.Expect(sa.Code).To(Equal(1))
		g.Expect(sa.Stderr).To(Equal(`error: get ServiceAccount ` + ns + `/nobody: serviceaccounts "nobody" not found` + "\n"))
		pod := run(t, c.Kubeconfig, "match", "nginx", "-n", ns, "--pod", "nothing")
		g.Expect(pod.Code).To(Equal(1))
		g.Expect(pod.Stderr).To(HavePrefix(`error: get Pod ` + ns + `/nothing: pods "nothing" not found`))
	})

	t.Run("completion lists the namespace's pull secrets", func(t *testing.T) {
		g := NewWithT(t)
		res := run(t, c.Kubeconfig, "__complete", "match", "nginx", "-n", ns, "--secret", "")
		g.Expect(res.Stdout).To(HavePrefix("bad\nhub\nquay\n:4\n"))
		sa := run(t, c.Kubeconfig, "__complete", "match", "nginx", "-n", ns, "--service-account", "b")
		g.Expect(sa.Stdout).To(HavePrefix("builder\n:4\n"))
	})
}
