package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDist is a dist/ as make release-snapshot leaves it, small.
func fakeDist(t *testing.T, v string) string {
	t.Helper()
	dist := t.TempDir()
	files := map[string]string{
		"krew/pullsecrets.yaml":                    "spec:\n  version: v" + v + "\n",
		"image-digest.txt":                         testDigest + "\n",
		"pullsecrets-" + v + ".tgz":                "chart",
		archiveName(v, platform{"linux", "amd64"}): "archive",
		"image/index.json":                         "{}",
	}
	var sums []string
	for name, content := range files {
		p := filepath.Join(dist, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "image/") {
			sums = append(sums, sha256Hex([]byte(content))+"  "+name)
		}
	}
	if err := os.WriteFile(filepath.Join(dist, "checksums.txt"), []byte(strings.Join(sums, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dist
}

func publish(t *testing.T, dist string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(repoRoot(t), "hack", "release", "publish.sh"), dist)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// make release-publish runs here: without PUBLISH=1 it checks dist/ and
// prints what the release workflow would run, publishing nothing.
func TestPublishDryRun(t *testing.T) {
	t.Parallel()
	dist := fakeDist(t, "1.2.3")
	out, err := publish(t, dist, "PUBLISH=")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"+ gh release create v1.2.3 --verify-tag",
		"+ bin/crane push " + dist + "/image ghcr.io/pullsecrets/pullsecrets-controller:1.2.3",
		"+ cosign sign --yes ghcr.io/pullsecrets/pullsecrets-controller@" + testDigest,
		"+ bin/helm push " + dist + "/pullsecrets-1.2.3.tgz oci://ghcr.io/pullsecrets/charts",
		"+ as_krew_bot gh pr create --repo kubernetes-sigs/krew-index",
		"dry run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
}

func TestPublishRefuses(t *testing.T) {
	t.Parallel()
	// A snapshot is never published.
	if out, err := publish(t, fakeDist(t, "1.2.3-snapshot-1a2b3c4d5e6f"), "PUBLISH=1"); err == nil || !strings.Contains(out, "is a snapshot") {
		t.Errorf("published a snapshot: %v\n%s", err, out)
	}
	// A file that does not match checksums.txt.
	dist := fakeDist(t, "1.2.3")
	if err := os.WriteFile(filepath.Join(dist, "pullsecrets-1.2.3.tgz"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := publish(t, dist, "PUBLISH="); err == nil || !strings.Contains(out, "does not match") {
		t.Errorf("published a changed file: %v\n%s", err, out)
	}
	// No snapshot at all.
	if out, err := publish(t, t.TempDir(), "PUBLISH="); err == nil || !strings.Contains(out, "no snapshot") {
		t.Errorf("published nothing: %v\n%s", err, out)
	}
}
