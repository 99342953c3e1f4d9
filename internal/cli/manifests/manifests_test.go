package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/pullsecrets/pullsecrets/internal/testing/clitest"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      # inline, to be moved
      imagePullSecrets:
      - name: regcred
      containers:
      - name: web
        image: registry.example.com/web
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMigrateDryRunPrintsDiffAndChangesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{"deploy.yaml": deployment})

	res := clitest.Run(t, "", "", "manifests", "migrate", dir)

	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("--- a"+filepath.Join(dir, "deploy.yaml")+"\n"), "an absolute path is written as git does, a/tmp/...")
	g.Expect(res.Stdout).To(ContainSubstring("-      imagePullSecrets:\n-      - name: regcred\n"))
	g.Expect(res.Stdout).To(ContainSubstring("--- /dev/null\n+++ b" + filepath.Join(dir, "serviceaccount-default.yaml") + "\n"))
	g.Expect(res.Stdout).To(HavePrefix("--- a"), "stdout is the diff alone, for git apply")
	g.Expect(res.Stderr).To(ContainSubstring("Deployment default/web: imagePullSecrets [regcred] moved to ServiceAccount default/default"))
	g.Expect(res.Stderr).To(HaveSuffix("1 file would be edited, 1 created; run again with --write to apply.\n"))
	g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).To(Equal(deployment))
	g.Expect(filepath.Join(dir, "serviceaccount-default.yaml")).NotTo(BeAnExistingFile())
}

func TestMigrateWriteThenNothingToDo(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{"deploy.yaml": deployment})

	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stdout).To(ContainSubstring("wrote " + filepath.Join(dir, "deploy.yaml")))
	g.Expect(res.Stdout).To(ContainSubstring("created " + filepath.Join(dir, "serviceaccount-default.yaml")))
	g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).NotTo(ContainSubstring("imagePullSecrets"))
	g.Expect(read(t, filepath.Join(dir, "serviceaccount-default.yaml"))).To(ContainSubstring("imagePullSecrets:\n- name: regcred\n"))

	again := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(again.Code).To(Equal(0), again.Stderr)
	g.Expect(again.Stdout).To(BeEmpty())
	g.Expect(again.Stderr).To(Equal("nothing to do\n"))
}

func TestMigrateNamespaceFlagIsTheDefaultNamespace(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{"deploy.yaml": deployment})

	res := clitest.Run(t, "", "", "-n", "team-a", "manifests", "migrate", dir)
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(res.Stderr).To(ContainSubstring("Deployment team-a/web"))

	bad := clitest.Run(t, "", "", "-n", "Not_A_Namespace", "manifests", "migrate", dir)
	g.Expect(bad.Code).To(Equal(2))
}

// TestMigrateBadInputWritesNothing: a file that cannot be read or
// understood is reported at file:line, exit status 2, and --write writes
// no file at all, not even the good ones: the files are written only when
// every file parsed.
func TestMigrateBadInputWritesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{
		"a-broken.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
		"b-values.yaml": "replicas: 3\n",
		"c-deploy.yaml": deployment,
	})

	res := clitest.Run(t, "", "", "manifests", "migrate", dir, filepath.Join(dir, "missing.yaml"), "--write")

	g.Expect(res.Code).To(Equal(2))
	g.Expect(res.Stderr).To(ContainSubstring("error: " + filepath.Join(dir, "a-broken.yaml") + ":4: invalid YAML"))
	g.Expect(res.Stderr).To(ContainSubstring("error: " + filepath.Join(dir, "b-values.yaml") + ":1: document is not a Kubernetes object"))
	g.Expect(res.Stderr).To(ContainSubstring("error: " + filepath.Join(dir, "missing.yaml") + ": cannot read: no such file or directory"))
	g.Expect(res.Stderr).To(HaveSuffix("1 file would be edited, 1 created; nothing was written: some input could not be read or understood (see above); fix it or leave it out.\n"))
	g.Expect(read(t, filepath.Join(dir, "c-deploy.yaml"))).To(Equal(deployment), "nothing is written while an input is bad")
	g.Expect(filepath.Join(dir, "serviceaccount-default.yaml")).NotTo(BeAnExistingFile())
}

// TestMigrateServiceAccountWithAYAMLErrorCreatesNoSecondOne: the issue's
// story. A ServiceAccount file that does not parse must not make migrate
// create a second definition of that ServiceAccount.
func TestMigrateServiceAccountWithAYAMLErrorCreatesNoSecondOne(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{
		"deploy.yaml": deployment,
		"sa.yaml":     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n   bad: indent\n",
	})
	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(res.Code).To(Equal(2), res.Stderr)
	g.Expect(res.Stderr).To(ContainSubstring("sa.yaml:5: invalid YAML"))
	g.Expect(filepath.Join(dir, "serviceaccount-default.yaml")).NotTo(BeAnExistingFile())
	g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).To(Equal(deployment))
}

// TestLimits runs each command over a folder with a file over the size
// limit, over the total limit, and with a merge-key bomb: each is named in
// an error with the limit, exit status 2 (bad input), and no file is
// written.
func TestLimits(t *testing.T) {
	t.Parallel()
	bomb := "apiVersion: v1\nkind: Pod\nmetadata: {name: bomb}\nx:\n  a0: &a0 {k: v}\n"
	for i := 1; i < 12; i++ {
		bomb += fmt.Sprintf("  a%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	bomb += "spec:\n  <<: *a11\n  imagePullSecrets: [{name: regcred}]\n  containers: [{name: c, image: nginx}]\n"
	cases := []struct {
		name    string
		files   map[string]int64 // sparse files of these sizes, besides deploy.yaml
		bomb    bool
		wantErr string
	}{
		{name: "a file over 8 MiB", files: map[string]int64{"big.yaml": 8<<20 + 1}, wantErr: "big.yaml: not read: it is 8.1 MiB, over the 8 MiB limit for one file"},
		{name: "files over 64 MiB together", files: map[string]int64{"a.yaml": 8 << 20, "b.yaml": 8 << 20, "c.yaml": 8 << 20, "d.yaml": 8 << 20, "e.yaml": 8 << 20, "f.yaml": 8 << 20, "g.yaml": 8 << 20, "h.yaml": 8 << 20},
			wantErr: ": not read: the 9 files come to 64.1 MiB, more than 64 MiB, the limit for all the files of one command; name fewer files or folders"},
		{name: "a merge-key bomb", bomb: true, wantErr: "bomb.yaml: aliases and merge keys (<<) expand its"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			dir := writeFiles(t, map[string]string{"deploy.yaml": deployment})
			for name, size := range tc.files {
				p := filepath.Join(dir, name)
				g.Expect(os.WriteFile(p, nil, 0o644)).To(Succeed())
				g.Expect(os.Truncate(p, size)).To(Succeed())
			}
			if tc.bomb {
				g.Expect(os.WriteFile(filepath.Join(dir, "bomb.yaml"), []byte(bomb), 0o644)).To(Succeed())
			}
			before := map[string]os.FileInfo{}
			for name := range tc.files {
				before[name], _ = os.Stat(filepath.Join(dir, name))
			}
			for _, args := range [][]string{
				{"manifests", "scan", dir},
				{"manifests", "rename", "regcred", "registry-creds", dir},
				{"manifests", "migrate", dir, "--write"},
			} {
				res := clitest.Run(t, "", "", args...)
				g.Expect(res.Code).To(Equal(2), "%v: %s", args, res.Stdout)
				g.Expect(res.Stderr).To(ContainSubstring(tc.wantErr), "%v", args)
			}
			for name, fi := range before {
				after, err := os.Stat(filepath.Join(dir, name))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(after.ModTime()).To(Equal(fi.ModTime()), "%s was written", name)
			}
			if tc.bomb {
				g.Expect(read(t, filepath.Join(dir, "bomb.yaml"))).To(Equal(bomb))
			}
			g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).To(Equal(deployment), "nothing is written while an input is bad")
		})
	}
}

func TestMigrateRefusalExitsOne(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	dir := writeFiles(t, map[string]string{
		"deploy.yaml": deployment,
		"sa.yaml":     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  annotations:\n    kubernetes.io/enforce-mountable-secrets: \"true\"\n",
	})

	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")

	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(ContainSubstring("Refused:\n  " + filepath.Join(dir, "deploy.yaml") + ":9: Deployment default/web: left alone: ServiceAccount default/default has kubernetes.io/enforce-mountable-secrets"))
	g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).To(Equal(deployment))
}

// TestMigrateRefusalWritesNothing: one refused group stops --write for
// every file, since the command is all or nothing.
func TestMigrateRefusalWritesNothing(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	other := strings.Replace(deployment, "metadata:\n  name: web\n", "metadata:\n  name: api\n  namespace: other\n", 1)
	dir := writeFiles(t, map[string]string{
		"deploy.yaml": deployment,
		"other.yaml":  other,
		"sa.yaml":     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  annotations:\n    kubernetes.io/enforce-mountable-secrets: \"true\"\n",
	})
	res := clitest.Run(t, "", "", "manifests", "migrate", dir, "--write")
	g.Expect(res.Code).To(Equal(1))
	g.Expect(res.Stderr).To(HaveSuffix("1 file would be edited, 1 created; nothing was written: some changes were refused (see above); fix them, or leave their files out.\n"))
	g.Expect(read(t, filepath.Join(dir, "other.yaml"))).To(Equal(other), "the namespace that could move is not written either")
	g.Expect(filepath.Join(dir, "serviceaccount-default.yaml")).NotTo(BeAnExistingFile())
}

func TestRename(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: e30=\n"
	dir := writeFiles(t, map[string]string{"deploy.yaml": deployment, "secret.yaml": secret})

	res := clitest.Run(t, "", "", "manifests", "rename", "regcred", "registry-creds", dir, "--write")
	g.Expect(res.Code).To(Equal(0), res.Stderr)
	g.Expect(read(t, filepath.Join(dir, "deploy.yaml"))).To(Equal(strings.Replace(deployment, "- name: regcred", "- name: registry-creds", 1)))
	g.Expect(read(t, filepath.Join(dir, "secret.yaml"))).To(Equal(strings.Replace(secret, "name: regcred", "name: registry-creds", 1)))

	again := clitest.Run(t, "", "", "manifests", "rename", "regcred", "registry-creds", dir)
	g.Expect(again.Stderr).To(Equal("nothing to do\n"))
	g.Expect(again.Code).To(Equal(0))
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"manifests", "migrate"},
		{"manifests", "rename", "a", "b"},
		{"manifests", "rename", "Bad_Name", "b", "."},
		{"manifests", "rename", "a", "a", "."},
		{"manifests", "migrate", ".", "--no-such-flag"},
		{"manifests", "scan"},
		{"manifests", "scan", ".", "-o", "bogus"},
		{"manifests", "migrate", "-", "--write"},
		{"manifests", "scan", "-", "-f", "-"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			res := clitest.Run(t, "", "", args...)
			if res.Code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", res.Code, res.Stderr)
			}
		})
	}
}

func TestScan(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	const password = "hunter2-SECRET-VALUE"
	secret := "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{\"auths\": {\"registry.example.com\": {\"username\": \"robot\", \"password\": \"" + password + "\"}}}'\n"
	dir := writeFiles(t, map[string]string{"deploy.yaml": deployment, "secret.yaml": secret})

	res := clitest.Run(t, "", "", "manifests", "scan", dir)
	g.Expect(res.Code).To(Equal(0), res.Stdout+res.Stderr)
	g.Expect(res.Stderr).To(Equal("1 workload, 0 ServiceAccounts, 1 pull Secret: 0 errors, 0 warnings.\n"))
	g.Expect(res.Stdout).To(ContainSubstring("  default/web Deployment  " + filepath.Join(dir, "deploy.yaml") + ":1\n    serviceAccount: default (no serviceAccountName)\n    imagePullSecrets: [regcred]\n    registry.example.com: registry.example.com/web\n"))
	g.Expect(res.Stdout).To(ContainSubstring("  default/regcred kubernetes.io/dockerconfigjson  " + filepath.Join(dir, "secret.yaml") + ":1  ok\n"))
	g.Expect(res.Stdout).To(ContainSubstring("No problems found."))

	js := clitest.Run(t, "", "", "manifests", "scan", dir, "-o", "json")
	g.Expect(js.Code).To(Equal(0))
	g.Expect(js.Stdout).To(HavePrefix("{\n    \"kind\": \"ScanReport\",\n    \"apiVersion\": \"cli.pullsecrets.dev/v1alpha1\",\n"))
	g.Expect(js.Stdout).To(ContainSubstring(`"effectivePullSecrets": [`))

	// A Secret the kubelet cannot read is a problem: exit 1. Nothing prints
	// the password.
	g.Expect(os.Remove(filepath.Join(dir, "secret.yaml"))).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte(strings.Replace(secret, "}}}'", "'", 1)), 0o644)).To(Succeed())
	dangling := clitest.Run(t, "", "", "manifests", "scan", dir)
	g.Expect(dangling.Code).To(Equal(1))
	g.Expect(dangling.Stdout).To(ContainSubstring("error NotJSON: Secret default/regcred: .dockerconfigjson: not valid JSON"))
	for _, out := range []string{res.Stdout, res.Stderr, js.Stdout, dangling.Stdout, dangling.Stderr} {
		g.Expect(out).NotTo(ContainSubstring(password))
	}
}
