package create_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

func TestMain(m *testing.M) {
	registrytest.QuietLogs()
	testcluster.Main(m, testcluster.Options{})
}

const password = "create-Pa55:word-xyz"

// run runs a command line and fails the test if the password, or its
// base64 in any form, shows in the output.
func run(t *testing.T, kubeconfig, stdin string, args ...string) clitest.Result {
	t.Helper()
	res := clitest.Run(t, kubeconfig, stdin, args...)
	noLeak(t, res.Stdout+res.Stderr, password)
	return res
}

func noLeak(t *testing.T, out, pass string) {
	t.Helper()
	for _, secret := range []string{pass, base64.StdEncoding.EncodeToString([]byte("ci-bot:" + pass)), base64.StdEncoding.EncodeToString([]byte(pass))} {
		if strings.Contains(out, secret) {
			t.Fatalf("the output holds the password (or its base64):\n%s", out)
		}
	}
}

func createArgs(ns string, extra ...string) []string {
	return append([]string{"create", "regcred", "-n", ns, "--docker-server=registry.example.com", "--docker-username=ci-bot", "--docker-password-stdin"}, extra...)
}

func TestCreateAttachIsIdempotentAndKeepsOtherEntries(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	sa, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	sa.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "theirs"}}
	_, err = c.Client.CoreV1().ServiceAccounts(ns).Update(ctx, sa, metav1.UpdateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--attach", "default")...)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("secret/regcred created\nserviceaccount/default attached\n"))

	secret, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	want, _ := credentials.Build("registry.example.com", "ci-bot", password, "")
	g.Expect(secret.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
	g.Expect(secret.Data[corev1.DockerConfigJsonKey]).To(Equal(want), "the bytes kubectl create secret docker-registry stores")
	g.Expect(secret.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "kubectl-pullsecrets"))
	sa, _ = c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(sa.ImagePullSecrets).To(Equal([]corev1.LocalObjectReference{{Name: "theirs"}, {Name: "regcred"}}))

	again := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--attach", "default")...)
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stdout).To(Equal("secret/regcred unchanged\nserviceaccount/default unchanged\n"))
	secret2, _ := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	sa2, _ := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(secret2.ResourceVersion).To(Equal(secret.ResourceVersion), "no write")
	g.Expect(sa2.ResourceVersion).To(Equal(sa.ResourceVersion), "no write")

	rotated := run(t, c.Kubeconfig, "rotated-"+password+"\n", createArgs(ns)...)
	g.Expect(rotated.Code).To(Equal(0), rotated.Stderr)
	g.Expect(rotated.Stdout).To(Equal("secret/regcred configured\n"))
	noLeak(t, rotated.Stdout+rotated.Stderr, "rotated-"+password)

	all := run(t, c.Kubeconfig, "rotated-"+password+"\n", createArgs(ns, "--attach-all")...)
	g.Expect(all.Stdout).To(Equal("secret/regcred unchanged\nserviceaccount/default unchanged\n"))
}

func TestCreateLeavesOthersSecretsAloneUnlessOverwrite(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "regcred"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"token": []byte("x")}}
	_, err := c.Client.CoreV1().Secrets(ns).Create(ctx, foreign, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	res := run(t, c.Kubeconfig, password+"\n", createArgs(ns)...)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(Equal("error: secret " + ns + "/regcred exists and was made by someone else, not kubectl pullsecrets: nothing was written (--overwrite replaces its type and data)\n"))
	kept, _ := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(kept.Type).To(Equal(corev1.SecretTypeOpaque))

	over := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--overwrite")...)
	g.Expect(over.Code).To(Equal(0), over.Stderr)
	g.Expect(over.Stdout).To(Equal("secret/regcred replaced (type Opaque -> kubernetes.io/dockerconfigjson)\n"))
	replaced, _ := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
	g.Expect(replaced.Type).To(Equal(corev1.SecretTypeDockerConfigJson))
	g.Expect(replaced.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "kubectl-pullsecrets"))
}

func TestCreateDryRun(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)

	// GitOps: the manifest, data included, without any cluster.
	manifest := clitest.Run(t, "", password+"\n", createArgs("shop", "--dry-run=client", "-o", "yaml")...)
	g.Expect(manifest.Code).To(Equal(0), manifest.Stderr)
	g.Expect(manifest.Stdout).To(ContainSubstring("kind: Secret\n"))
	g.Expect(manifest.Stdout).To(ContainSubstring("namespace: shop\n"))
	g.Expect(manifest.Stdout).To(ContainSubstring("  .dockerconfigjson: "))
	g.Expect(manifest.Stdout).To(ContainSubstring("app.kubernetes.io/managed-by: kubectl-pullsecrets"))
	g.Expect(manifest.Stdout).To(ContainSubstring("type: kubernetes.io/dockerconfigjson\n"))

	for _, mode := range []string{"client", "server"} {
		res := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--dry-run="+mode, "--attach", "default")...)
		g.Expect(res.Code).To(Equal(0), res.Stderr)
		suffix := " (dry run)"
		if mode == "server" {
			suffix = " (server dry run)"
		}
		g.Expect(res.Stdout).To(Equal("secret/regcred created" + suffix + "\nserviceaccount/default attached" + suffix + "\n"))
		_, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run stores nothing")
		sa, _ := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		g.Expect(sa.ImagePullSecrets).To(BeEmpty())
	}

	// Written for real, -o yaml prints what was written, the Secret
	// without its data (run checks that no output holds the password).
	written := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "-o", "yaml", "--attach", "default")...)
	g.Expect(written.Code).To(Equal(0), written.Stderr)
	g.Expect(written.Stdout).To(HavePrefix("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Secret\n"))
	g.Expect(written.Stdout).To(ContainSubstring("  kind: ServiceAccount\n"))
	g.Expect(written.Stdout).NotTo(ContainSubstring(".dockerconfigjson"))
	g.Expect(written.Stdout).To(HaveSuffix("kind: List\nmetadata: {}\n"))
	g.Expect(written.Stderr).To(Equal("secret/regcred created\nserviceaccount/default attached\n"))
	name := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "-o", "name", "--attach", "default")...)
	g.Expect(name.Code).To(Equal(0), name.Stderr)
	g.Expect(name.Stdout).To(BeEmpty(), "nothing written: nothing named")
	g.Expect(name.Stderr).To(Equal("secret/regcred unchanged\nserviceaccount/default unchanged\n"))
}

// TestCreateIsAllOrNothing: a registry server the kubelet cannot use, a
// ServiceAccount of --attach that does not exist, or a namespace that does
// not exist, stops create before it writes anything.
func TestCreateIsAllOrNothing(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ctx := testcluster.Context(t)
	ns := c.Namespace(t)
	stored := func() bool {
		_, err := c.Client.CoreV1().Secrets(ns).Get(ctx, "regcred", metav1.GetOptions{})
		return err == nil
	}
	for server, want := range map[string]string{
		"not a url":                  `--docker-server "not a url": the kubelet cannot use it: key "not a url" cannot be parsed as a URL: the kubelet ignores this entry`,
		"registry.example.com:99999": `--docker-server "registry.example.com:99999": port 99999 is not a port (1-65535): no registry can listen there`,
		"registry":                   `--docker-server "registry": host "registry" has no dot and no port`,
	} {
		res := run(t, c.Kubeconfig, password+"\n", "create", "regcred", "-n", ns, "--docker-server="+server, "--docker-username=ci-bot", "--docker-password-stdin", "--attach", "default")
		g.Expect(res.Code).To(Equal(2), server)
		g.Expect(res.Stderr).To(ContainSubstring("error: "+want), server)
		g.Expect(stored()).To(BeFalse(), server)
	}

	half := run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--attach", "default", "--attach", "builder")...)
	g.Expect(half.Code).To(Equal(1))
	g.Expect(half.Stdout).To(BeEmpty())
	g.Expect(half.Stderr).To(Equal("error: ServiceAccount " + ns + "/builder does not exist; nothing was written\n"))
	g.Expect(stored()).To(BeFalse(), "the Secret is not created when an attachment cannot be made")
	sa, _ := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
	g.Expect(sa.ImagePullSecrets).To(BeEmpty())

	nope := run(t, c.Kubeconfig, password+"\n", createArgs("no-such-namespace-x")...)
	g.Expect(nope.Code).To(Equal(1))
	g.Expect(nope.Stderr).To(Equal("error: namespace \"no-such-namespace-x\" does not exist; nothing was written\n"))

	// Every write carries the field manager.
	rq := &clitest.Requests{}
	ok := clitest.RunRecorded(t, c.Kubeconfig, rq, "create", "regcred", "-n", ns, "--docker-server=registry.example.com", "--docker-username=ci-bot",
		"--docker-password", password, "--attach", "default", "--field-manager", "gitops-bot")
	g.Expect(ok.Code).To(Equal(0), ok.Stderr)
	g.Expect(ok.Stdout).To(Equal("secret/regcred created\nserviceaccount/default attached\n"))
	writes := 0
	for _, r := range rq.All() {
		if r.Method != http.MethodGet {
			writes++
			g.Expect(r.Query).To(ContainSubstring("fieldManager=gitops-bot"), "%s", r)
		}
	}
	g.Expect(writes).To(Equal(2))
}

// TestCreateReadsItsInputsWithinLimits: --from-docker-config,
// --docker-password-stdin and --registry-ca-file read at most 1 MiB (a
// Secret holds no more), and say so clearly.
func TestCreateReadsItsInputsWithinLimits(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "config.json")
	g.Expect(os.WriteFile(big, nil, 0o600)).To(Succeed())
	g.Expect(os.Truncate(big, 2<<20)).To(Succeed())
	res := run(t, c.Kubeconfig, "", "create", "regcred", "-n", ns, "--from-docker-config", big)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(Equal("error: --from-docker-config " + big + ": not read: it is 2 MiB, over the 1 MiB limit (a Secret holds at most 1 MiB)\n"))

	long := strings.Repeat("p", 1<<20+10) + "\n"
	res = clitest.Run(t, c.Kubeconfig, long, createArgs(ns)...)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(Equal("error: --docker-password-stdin: not read: its first line holds more than the 1 MiB limit (a Secret holds at most 1 MiB)\n"))

	ca := filepath.Join(dir, "ca.pem")
	g.Expect(os.WriteFile(ca, nil, 0o600)).To(Succeed())
	g.Expect(os.Truncate(ca, 3<<20)).To(Succeed())
	res = run(t, c.Kubeconfig, password+"\n", createArgs(ns, "--verify", "--verify-image", "registry.example.com/app", "--registry-ca-file", ca)...)
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(Equal("error: --registry-ca-file " + ca + ": not read: it is 3 MiB, over the 1 MiB limit for a CA bundle\n"))
	_, err := c.Client.CoreV1().Secrets(ns).Get(testcluster.Context(t), "regcred", metav1.GetOptions{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing was written")
}

func TestCreateFromDockerConfigReportsWhatItLeavesOut(t *testing.T) {
	c := testcluster.Get(t)
	g := NewWithT(t)
	ns := c.Namespace(t)
	auth := base64.StdEncoding.EncodeToString([]byte("ci-bot:" + password))
	cfg := `{"auths":{"registry.example.com":{"auth":"` + auth + `"},"ghcr.io":{}},"credsStore":"desktop"}`
	file := filepath.Join(t.TempDir(), "config.json")
	g.Expect(os.WriteFile(file, []byte(cfg), 0o600)).To(Succeed())

	res := run(t, c.Kubeconfig, "", "create", "regcred", "-n", ns, "--from-docker-config", file)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(Equal("secret/regcred created\n"))
	g.Expect(res.Stderr).To(ContainSubstring("warning: " + file + " ghcr.io (HelperOnly): "))
	g.Expect(res.Stderr).To(ContainSubstring("docker-credential-desktop"))
	s, err := c.Client.CoreV1().Secrets(ns).Get(testcluster.Context(t), "regcred", metav1.GetOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(s.Data[corev1.DockerConfigJsonKey])).To(ContainSubstring(`"registry.example.com"`))
	g.Expect(string(s.Data[corev1.DockerConfigJsonKey])).NotTo(ContainSubstring("ghcr.io"))
}

func TestCreateVerify(t *testing.T) {
	c := testcluster.Get(t)
	reg := registrytest.Start(t, registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd,
		Users: []registrytest.User{{Name: "ci-bot", Password: password, Repositories: []string{"*"}}}})
	reg.Push(t, "shop/web", "1.0")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, reg.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pass, image string
		force             bool
		wantCode          int
		wantOut, wantErr  string
		stored            bool
	}{
		{name: "ok", pass: password, image: reg.Host + "/shop/web:1.0", wantOut: "registry check: " + reg.Host + "/shop/web:1.0 resolves to sha256:", stored: true},
		{name: "unauthorized", pass: "wrong-" + password, image: reg.Host + "/shop/web:1.0", wantCode: 1, wantErr: "failed (unauthorized): " + reg.Host + " rejected the credentials"},
		{name: "not-found", pass: password, image: reg.Host + "/shop/web:2.0", wantCode: 1, wantErr: "failed (not-found): tag 2.0 is not in repository shop/web"},
		{name: "not-found-forced", pass: password, image: reg.Host + "/shop/web:2.0", force: true, wantErr: "writing anyway (--force)", stored: true},
		{name: "no-matching-key", pass: password, image: "registry.other.example/shop/web:1.0", wantCode: 1, wantErr: "no key of Secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			ns := c.Namespace(t)
			args := []string{"create", "regcred", "-n", ns, "--docker-server=" + reg.Host, "--docker-username=ci-bot", "--docker-password-stdin",
				"--verify", "--verify-image", tt.image, "--registry-ca-file", caFile}
			if tt.force {
				args = append(args, "--force")
			}
			res := clitest.Run(t, c.Kubeconfig, tt.pass+"\n", args...)
			noLeak(t, res.Stdout+res.Stderr, tt.pass)
			g.Expect(res.Code).To(Equal(tt.wantCode), res.Stderr)
			g.Expect(res.Stdout).To(ContainSubstring(tt.wantOut))
			g.Expect(res.Stderr).To(ContainSubstring(tt.wantErr))
			_, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), "regcred", metav1.GetOptions{})
			g.Expect(err == nil).To(Equal(tt.stored), "stored: %v", err)
		})
	}
}

func TestCreateUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"create"},
		{"create", "Not_A_Name", "--docker-username=u", "--docker-password-stdin"},
		{"create", "regcred", "--docker-password-stdin"},
		{"create", "regcred", "--docker-username=u"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "--verify"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "--from-docker-config", "x.json"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "--attach", "a", "--attach-all"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "--dry-run=maybe"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "--docker-server=not a url"},
		{"create", "regcred", "--docker-username=u", "--docker-password-stdin", "-o", "bogus"},
		{"create", "pod/regcred", "--docker-username=u", "--docker-password-stdin"},
	} {
		res := clitest.Run(t, "", password+"\n", args...)
		if res.Code != 2 {
			t.Errorf("%v: exit status %d, want 2 (stderr %q)", args, res.Code, res.Stderr)
		}
		noLeak(t, res.Stdout+res.Stderr, password)
	}
}
