package match_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pullsecrets/pullsecrets/internal/credentials"
	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
	"github.com/pullsecrets/pullsecrets/internal/testing/registrytest"
	"github.com/pullsecrets/pullsecrets/internal/testing/testcluster"
)

// The registry's account. Both passwords hold secretMarker, so run fails
// any test whose output shows one; verifyRun also looks for their base64
// forms.
const (
	registryUser  = "ci-bot"
	registryPass  = "hunter2-registry-5c1e"
	wrongPassword = "hunter2-wrong-0b7d"
)

// verifyRegistry is a TLS registry with HTTP basic auth serving
// shop/web:1.0, the digest of that image, and a PEM file of its CA for
// --registry-ca-file.
func verifyRegistry(t *testing.T) (reg *registrytest.Registry, digest, caFile string) {
	t.Helper()
	reg = registrytest.Start(t, registrytest.Options{TLS: true, Auth: registrytest.AuthHtpasswd,
		Users: []registrytest.User{{Name: registryUser, Password: registryPass, Repositories: []string{"*"}}}})
	digest = reg.Push(t, "shop/web", "1.0").String()
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, reg.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return reg, digest, caFile
}

// secretDoc is a Secret manifest as kubectl create secret docker-registry
// writes it, without a namespace.
func secretDoc(t *testing.T, name, server, username, password string) string {
	t.Helper()
	data, err := credentials.Build(server, username, password, "")
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: %s\n",
		name, base64.StdEncoding.EncodeToString(data))
}

// writeSecrets writes the documents to one file and returns its path.
func writeSecrets(t *testing.T, docs ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secrets.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// verifyRun is run, which fails on any secret of testdata, that also fails
// on the passwords, user:password and their base64 forms (auth, the Secret
// data) in stdout or stderr.
func verifyRun(t *testing.T, kubeconfig, secretFile string, args ...string) clitest.Result {
	t.Helper()
	res := run(t, kubeconfig, args...)
	leaks := []string{registryPass, wrongPassword}
	for _, p := range []string{registryPass, wrongPassword} {
		leaks = append(leaks, registryUser+":"+p, base64.StdEncoding.EncodeToString([]byte(registryUser+":"+p)))
	}
	if secretFile != "" {
		data, err := os.ReadFile(secretFile)
		if err != nil {
			t.Fatal(err)
		}
		leaks = append(leaks, secretBase64(string(data))...)
	}
	for _, secret := range leaks {
		if strings.Contains(res.Stdout, secret) || strings.Contains(res.Stderr, secret) {
			t.Fatalf("the output of %v holds the secret %q:\n%s%s", args, secret, res.Stdout, res.Stderr)
		}
	}
	return res
}

// spaces are runs of the padding tabwriter puts between columns.
var spaces = regexp.MustCompile(` {2,}`)

// verifyJSON is the verify object of -o json.
type verifyJSON struct {
	Status    string `json:"status"`
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Try       int    `json:"try"`
	Secret    string `json:"secret"`
	Registry  string `json:"registry"`
	Message   string `json:"message"`
}

// parseVerify returns the verify object of each image of a -o json report
// (nil where there is none).
func parseVerify(t *testing.T, stdout string) []*verifyJSON {
	t.Helper()
	var out struct {
		Images []struct {
			Verify *verifyJSON `json:"verify"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	vs := make([]*verifyJSON, 0, len(out.Images))
	for _, img := range out.Images {
		vs = append(vs, img.Verify)
	}
	return vs
}

// TestVerify checks --secret-file images against a real registry, with the
// credentials the kubelet would try, in its order.
func TestVerify(t *testing.T) {
	t.Parallel()
	reg, digest, caFile := verifyRegistry(t)
	image := reg.Host + "/shop/web:1.0"
	right := secretDoc(t, "regcred", reg.Host, registryUser, registryPass)
	wrong := secretDoc(t, "stale", reg.Host, registryUser, wrongPassword)

	t.Run("right credentials: ok, with the digest", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, right)
		res := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile)
		g.Expect(res.Code).To(Equal(0), res.Stdout+res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("  1    default/regcred  " + reg.Host + "  " + registryUser + "\n" +
			"  verified: ok (" + digest + ") with secret default/regcred key " + reg.Host + "\n"))
		g.Expect(res.Stderr).To(Equal("0 of 1 image without a credential, 0 failing the registry check; 0 errors, 0 warnings.\n"), "the summary goes to stderr")

		js := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile, "-o", "json")
		g.Expect(js.Code).To(Equal(0), js.Stderr)
		g.Expect(parseVerify(t, js.Stdout)).To(Equal([]*verifyJSON{{
			Status: "ok", Reference: image, Digest: digest, Try: 1, Secret: "default/regcred", Registry: reg.Host,
			Message: image + " resolves to " + digest + " with the credentials of regcred (" + reg.Host + ", user " + registryUser + ")",
		}}))
	})

	t.Run("wrong password: unauthorized, exit 1", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, wrong)
		res := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile)
		g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("  1    default/stale  " + reg.Host + "  " + registryUser + "\n" +
			"  verified: unauthorized: " + reg.Host + " rejected the credentials"))
		g.Expect(res.Stderr).To(Equal("0 of 1 image without a credential, 1 failing the registry check; 0 errors, 0 warnings.\n"))

		js := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile, "-o", "json")
		g.Expect(js.Code).To(Equal(1))
		v := parseVerify(t, js.Stdout)
		g.Expect(v).To(HaveLen(1))
		g.Expect(v[0].Status).To(Equal("unauthorized"))
		g.Expect(v[0].Reference).To(Equal(image))
		g.Expect(v[0].Digest + v[0].Secret + v[0].Registry).To(BeEmpty())
		g.Expect(v[0].Try).To(BeZero())
		g.Expect(v[0].Message).To(ContainSubstring(reg.Host + " rejected the credentials"))
	})

	t.Run("two secrets, only the second works: ok, naming the second", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, wrong, right)
		res := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile)
		g.Expect(res.Code).To(Equal(0), res.Stdout+res.Stderr)
		// The columns' width depends on the port's length: compare with
		// runs of spaces made two.
		text := strings.NewReplacer(reg.Host, "REGISTRY", digest, "DIGEST", file, "FILE").Replace(res.Stdout)
		text = spaces.ReplaceAllString(text, "  ")
		g.Expect(text).To(Equal(`Pull secrets from --secret-file, in the kubelet's order:
  default/stale (FILE:1)
  default/regcred (FILE:9)

Image REGISTRY/shop/web:1.0 (REGISTRY/shop/web):
  TRY  SECRET  REGISTRY  USERNAME
  1  default/stale  REGISTRY  ci-bot
  2  default/regcred  REGISTRY  ci-bot
  verified: ok (DIGEST) with secret default/regcred key REGISTRY (try 2)
`))

		js := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile, "-o", "json")
		g.Expect(js.Code).To(Equal(0), js.Stderr)
		g.Expect(parseVerify(t, js.Stdout)).To(Equal([]*verifyJSON{{
			Status: "ok", Reference: image, Digest: digest, Try: 2, Secret: "default/regcred", Registry: reg.Host,
			Message: image + " resolves to " + digest + " with the credentials of regcred (" + reg.Host + ", user " + registryUser + ") (after 1 failed credential)",
		}}))
	})

	t.Run("no matching credential: asked anonymously, as the kubelet pulls", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, secretDoc(t, "other", "other.example.com", registryUser, registryPass))
		res := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify", "--registry-ca-file", caFile)
		g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("  the kubelet pulls it without credentials (fine for a public image)\n" +
			"  verified: unauthorized: " + reg.Host + " requires credentials"))
	})

	t.Run("without the registry's CA: tls-error", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, right)
		res := verifyRun(t, "", file, "match", image, "--secret-file", file, "--verify")
		g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("  verified: tls-error: "))
	})

	t.Run("several images, one check each", func(t *testing.T) {
		t.Parallel()
		g := NewWithT(t)
		file := writeSecrets(t, right)
		res := verifyRun(t, "", file, "match", image, reg.Host+"/shop/web:2.0", "--secret-file", file, "--verify", "--registry-ca-file", caFile, "-o", "json")
		g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
		v := parseVerify(t, res.Stdout)
		g.Expect(v).To(HaveLen(2))
		g.Expect(v[0].Status).To(Equal("ok"))
		g.Expect(v[1].Status).To(Equal("not-found"))
		g.Expect(v[1].Message).To(ContainSubstring("tag 2.0 is not in repository shop/web"))
	})
}

// TestVerifyAnonymousPublicImage: with no matching credential the image is
// pulled anonymously, and a registry that serves it says so. An image
// without a credential still makes the exit status 1, --verify or not.
func TestVerifyAnonymousPublicImage(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	reg := registrytest.Start(t, registrytest.Options{})
	digest := reg.Push(t, "public/app", "1").String()
	file := writeSecrets(t, secretDoc(t, "other", "other.example.com", registryUser, registryPass))
	res := verifyRun(t, "", file, "match", reg.Host+"/public/app:1", "--secret-file", file, "--verify", "--insecure-registry", reg.Host)
	g.Expect(res.Code).To(Equal(1), res.Stdout+res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("  verified: ok (" + digest + ") without credentials\n"))
	g.Expect(res.Stderr).To(Equal("1 of 1 image without a credential, 0 failing the registry check; 0 errors, 0 warnings.\n"))

	js := verifyRun(t, "", file, "match", reg.Host+"/public/app:1", "--secret-file", file, "--verify", "--insecure-registry", reg.Host, "-o", "json")
	v := parseVerify(t, js.Stdout)
	g.Expect(v).To(HaveLen(1))
	g.Expect(v[0].Status).To(Equal("ok"))
	g.Expect(v[0].Digest).To(Equal(digest))
	g.Expect(v[0].Try).To(BeZero())
	g.Expect(v[0].Secret + v[0].Registry).To(BeEmpty())

	// Plain HTTP only for hosts named with --insecure-registry.
	plain := verifyRun(t, "", file, "match", reg.Host+"/public/app:1", "--secret-file", file, "--verify")
	g.Expect(plain.Stdout).NotTo(ContainSubstring("verified: ok"))
}

// TestVerifyKeyringFails: when a pull secret breaks the keyring the kubelet
// asks no registry, and neither does --verify.
func TestVerifyKeyringFails(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	reg, _, caFile := verifyRegistry(t)
	reg.ResetRequests()
	file := writeSecrets(t, secretDoc(t, "regcred", reg.Host, registryUser, registryPass))
	res := verifyRun(t, "", file, "match", reg.Host+"/shop/web:1.0", "--secret-file", file, "--secret-file", secretFile("broken.yaml"),
		"--verify", "--registry-ca-file", caFile, "-o", "json")
	g.Expect(res.Code).To(Equal(1), res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring(`"error": "pull secret team-a/broken: `))
	g.Expect(parseVerify(t, res.Stdout)).To(Equal([]*verifyJSON{nil}))
	g.Expect(reg.Requests()).To(BeEmpty())
}

// TestVerifyBadCAFile: an unreadable --registry-ca-file stops the command
// before anything is read or asked.
func TestVerifyBadCAFile(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	res := run(t, "", "match", "nginx", "--secret-file", secretFile("regcred.yaml"), "--verify", "--registry-ca-file", filepath.Join("testdata", "no-such-ca.pem"))
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stdout).To(BeEmpty())
	g.Expect(res.Stderr).To(HavePrefix("error: read registry CA file: "))
}

// TestVerifyClusterForm: --secret reads the Secret from the namespace and
// checks it the same way.
func TestVerifyClusterForm(t *testing.T) {
	t.Parallel()
	c := testcluster.Get(t)
	ns := c.Namespace(t)
	reg, digest, caFile := verifyRegistry(t)
	pullSecret(testcluster.Context(t), t, c.Client, ns, "regcred", reg.Host, registryUser, registryPass)
	g := NewWithT(t)
	res := verifyRun(t, c.Kubeconfig, "", "match", reg.Host+"/shop/web:1.0", "-n", ns, "--secret", "regcred", "--verify", "--registry-ca-file", caFile)
	g.Expect(res.Code).To(Equal(0), res.Stdout+res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("  verified: ok (" + digest + ") with secret " + ns + "/regcred key " + reg.Host + "\n"))
}
