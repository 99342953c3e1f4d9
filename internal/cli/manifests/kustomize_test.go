package manifests_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
)

const kustomization = `# the shop, as deployed
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: shop
resources:
  # the web front end
  - app.yaml
`

// build runs kustomize (the kustomize api that kubectl kustomize uses) on
// dir and returns the YAML it renders.
func build(t *testing.T, dir string) string {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestMigrateKustomization: the story. On a kustomize folder,
// migrate never takes kustomization.yaml for a bad object, adds the
// ServiceAccount file it creates to resources (comments kept), and what
// kustomize builds afterwards gives the Pods the same pull secrets, now
// from their ServiceAccount.
func TestMigrateKustomization(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{"kustomization.yaml": kustomization, "app.yaml": deployment, "unlisted.yaml": "not: a manifest\n"})
	before := build(t, dir)
	g.Expect(before).To(ContainSubstring("imagePullSecrets:\n      - name: regcred"))

	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stderr).NotTo(ContainSubstring("not a Kubernetes object"))
	g.Expect(res.Stderr).To(ContainSubstring("Deployment shop/web: imagePullSecrets [regcred] moved to ServiceAccount shop/default"))
	g.Expect(res.Stderr).To(ContainSubstring(filepath.Join(dir, "kustomization.yaml") + ": resources: serviceaccount-default.yaml added, so that kustomize builds the new ServiceAccount"))
	g.Expect(res.Stdout).To(Equal("wrote " + filepath.Join(dir, "app.yaml") + "\nwrote " + filepath.Join(dir, "kustomization.yaml") + "\ncreated " + filepath.Join(dir, "serviceaccount-default.yaml") + "\n"))
	g.Expect(read(t, filepath.Join(dir, "kustomization.yaml"))).To(Equal(kustomization + "  - serviceaccount-default.yaml\n"))
	g.Expect(read(t, filepath.Join(dir, "serviceaccount-default.yaml"))).NotTo(ContainSubstring("namespace:"), "the kustomization sets it")

	after := build(t, dir)
	g.Expect(after).To(ContainSubstring("kind: ServiceAccount\nmetadata:\n  name: default\n  namespace: shop\n"))
	g.Expect(after).To(ContainSubstring("imagePullSecrets:\n- name: regcred\nkind: ServiceAccount"))
	g.Expect(strings.Count(after, "imagePullSecrets")).To(Equal(1), "the Deployment no longer lists its own")

	again := clitest.Run(t, "", "", "manifests", "migrate", dir)
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stderr).To(Equal("nothing to do\n"))
}

// TestMigrateKustomizationWithPullSecretPatchesIsRefused: a patch that may
// put imagePullSecrets back on the template would hide the
// ServiceAccount's list: migrate refuses and writes nothing.
func TestMigrateKustomizationWithPullSecretPatchesIsRefused(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	patched := kustomization + "patches:\n  - path: pull.yaml\n"
	patch := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      imagePullSecrets:\n      - name: extra\n"
	dir := writeFiles(t, map[string]string{"kustomization.yaml": patched, "app.yaml": deployment, "pull.yaml": patch})
	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(res.Code).To(Equal(1), res.Stderr)
	g.Expect(res.Stderr).To(ContainSubstring("has patch pull.yaml that may set imagePullSecrets or serviceAccountName when kustomize builds"))
	g.Expect(read(t, filepath.Join(dir, "app.yaml"))).To(Equal(deployment))
	g.Expect(read(t, filepath.Join(dir, "kustomization.yaml"))).To(Equal(patched))
}

// TestScanKustomizationsAndExitStatus: scan follows kustomizations (never
// reporting kustomization.yaml, counting a secretGenerator's Secret as
// defined, noting remote resources), and its exit status means one thing:
// 0 clean, 1 a finding, 2 bad input, with "No problems found." only when
// something was scanned.
func TestScanKustomizationsAndExitStatus(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	generated := kustomization + "  - https://github.com/example/base?ref=v1\nsecretGenerator:\n  - name: regcred\n    type: kubernetes.io/dockerconfigjson\n    files:\n      - .dockerconfigjson=config.json\n"
	dir := writeFiles(t, map[string]string{"base/kustomization.yaml": generated, "base/app.yaml": deployment, "base/config.json": "{}"})

	res := clitest.Run(t, "", "", "manifests", "scan", dir)
	g.Expect(res.Code).To(Equal(0), res.Stdout+res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("shop/web Deployment"))
	g.Expect(res.Stdout).To(ContainSubstring("shop/regcred secretGenerator  " + filepath.Join(dir, "base", "kustomization.yaml") + ":0  contents not in the files (secretGenerator)"))
	g.Expect(res.Stdout).To(HaveSuffix("No problems found.\n"))
	g.Expect(res.Stderr).To(ContainSubstring("note: " + filepath.Join(dir, "base", "kustomization.yaml") + ": resource https://github.com/example/base?ref=v1 is remote: not followed"))

	// The kustomization file named on its own reads the same.
	file := clitest.Run(t, "", "", "manifests", "scan", filepath.Join(dir, "base", "kustomization.yaml"))
	g.Expect(file.Code).To(Equal(0), file.Stderr)
	g.Expect(file.Stdout).To(Equal(res.Stdout))

	finding := writeFiles(t, map[string]string{"kustomization.yaml": kustomization, "app.yaml": deployment})
	dangling := clitest.Run(t, "", "", "manifests", "scan", finding)
	g.Expect(dangling.Code).To(Equal(1))
	g.Expect(dangling.Stdout).To(ContainSubstring("error DanglingSecret: Deployment shop/web: imagePullSecrets names regcred, which no manifest in namespace shop defines"))
	g.Expect(dangling.Stdout).NotTo(ContainSubstring("No problems found."))

	missing := clitest.Run(t, "", "", "manifests", "scan", filepath.Join(dir, "no-such-folder"))
	g.Expect(missing.Code).To(Equal(2))
	g.Expect(missing.Stdout).To(BeEmpty(), "no report, and no \"No problems found.\"")
	g.Expect(missing.Stderr).To(ContainSubstring("no-such-folder: cannot read: no such file or directory"))

	empty := clitest.Run(t, "", "", "manifests", "scan", t.TempDir())
	g.Expect(empty.Code).To(Equal(2))
	g.Expect(empty.Stdout).To(BeEmpty())
	g.Expect(empty.Stderr).To(ContainSubstring("no Kubernetes object in "))

	broken := writeFiles(t, map[string]string{"kustomization.yaml": "resources:\n  - gone.yaml\n"})
	bad := clitest.Run(t, "", "", "manifests", "scan", broken)
	g.Expect(bad.Code).To(Equal(2))
	g.Expect(bad.Stderr).To(ContainSubstring(filepath.Join(broken, "kustomization.yaml") + ": resource gone.yaml: cannot read: no such file or directory"))
}

// TestStdinAndFilenames: "-" reads stdin (helm template | scan -), -f takes
// paths as kubectl does, and -R walks the subfolders of a folder given
// with -f.
func TestStdinAndFilenames(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\":{\"registry.example.com\":{\"auth\":\"dTpw\"}}}'\n"
	piped := "---\n# Source: shop/templates/deploy.yaml\n" + deployment + "---\n" + secret

	for _, args := range [][]string{{"manifests", "scan", "-"}, {"manifests", "scan", "-f", "-"}} {
		res := clitest.Run(t, "", piped, args...)
		g.Expect(res.Code).To(Equal(0), "%v: %s", args, res.Stderr)
		g.Expect(res.Stdout).To(ContainSubstring("default/web Deployment  <stdin>:3"), "%v", args)
		g.Expect(res.Stdout).To(ContainSubstring("No problems found."), "%v", args)
	}
	diff := clitest.Run(t, "", piped, "manifests", "migrate", "-")
	g.Expect(diff.Code).To(Equal(0), diff.Stderr)
	g.Expect(diff.Stdout).To(HavePrefix("--- a/<stdin>\n+++ b/<stdin>\n"))
	nothing := clitest.Run(t, "", "", "manifests", "scan", "-")
	g.Expect(nothing.Code).To(Equal(2))
	g.Expect(nothing.Stderr).To(ContainSubstring("no Kubernetes object in stdin: nothing to scan"))

	dir := writeFiles(t, map[string]string{"top.yaml": secret, "sub/deploy.yaml": deployment})
	flat := clitest.Run(t, "", "", "manifests", "scan", "-f", dir, "-o", "name")
	g.Expect(flat.Code).To(Equal(0), flat.Stderr)
	flatJSON := clitest.Run(t, "", "", "manifests", "scan", "-f", dir, "-o", "jsonpath={.workloads[*].name}")
	g.Expect(flatJSON.Stdout).To(BeEmpty(), "-f DIR reads the folder's own files only, as kubectl does")
	deep := clitest.Run(t, "", "", "manifests", "scan", "-f", dir, "-R", "-o", "jsonpath={.workloads[*].name}")
	g.Expect(deep.Stdout).To(Equal("web"), "-R walks the subfolders")
	arg := clitest.Run(t, "", "", "manifests", "scan", dir, "-o", "jsonpath={.workloads[*].name}")
	g.Expect(arg.Stdout).To(Equal("web"), "a PATH argument is walked with its subfolders")

	g.Expect(os.WriteFile(filepath.Join(dir, "top.yaml"), []byte(strings.Replace(secret, "dTpw", "!!!", 1)), 0o644)).To(Succeed())
	names := clitest.Run(t, "", "", "manifests", "scan", dir, "-o", "name")
	g.Expect(names.Code).To(Equal(1))
	g.Expect(names.Stdout).To(Equal("secret/regcred\ndeployment.apps/web\n"), "-o name: the objects with an error (the Deployment's keyring fails)")
}
