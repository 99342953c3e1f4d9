package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	cliversion "github.com/pullsecrets/pullsecrets/internal/cli/version"
	"github.com/pullsecrets/pullsecrets/internal/version"
)

const (
	testCommit = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"
	testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

var testTime = time.Unix(1764000000, 0).UTC()

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestReleaseVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		repo  string
		g     gitState
		want  string
		fails bool
	}{
		{"0.2.0", gitState{commit: testCommit, tags: []string{"v0.2.0"}}, "0.2.0", false},
		{"0.2.0", gitState{commit: testCommit, tags: []string{"other", "v0.2.0"}}, "0.2.0", false},
		{"0.2.0", gitState{commit: testCommit}, "0.2.0-snapshot-1a2b3c4d5e6f", false},
		{"0.2.0", gitState{commit: "0123456789ab" + testCommit[12:]}, "0.2.0-snapshot-0123456789ab", false},
		{"0.2.0", gitState{commit: testCommit, tags: []string{"v0.1.0"}}, "0.2.0-snapshot-1a2b3c4d5e6f", false},
		{"0.2.0", gitState{commit: testCommit, tags: []string{"v0.2.0"}, dirty: true}, "0.2.0-dirty", false},
		{"0.2.0", gitState{commit: testCommit, dirty: true}, "0.2.0-snapshot-1a2b3c4d5e6f-dirty", false},
		{"1.0.0-rc.1", gitState{commit: testCommit, tags: []string{"v1.0.0-rc.1"}}, "1.0.0-rc.1", false},
		{"v0.2.0", gitState{commit: testCommit}, "", true},
		{"0.2", gitState{commit: testCommit}, "", true},
		{"0.2.0", gitState{commit: "abc"}, "", true},
	} {
		got, err := releaseVersion(tc.repo, tc.g)
		if (err != nil) != tc.fails || got != tc.want {
			t.Errorf("releaseVersion(%q, %+v) = %q, %v; want %q (fails: %v)", tc.repo, tc.g, got, err, tc.want, tc.fails)
		}
		if err == nil && !semverRE.MatchString(got) {
			t.Errorf("releaseVersion(%q, %+v) = %q, not a semantic version", tc.repo, tc.g, got)
		}
	}
}

// The chart's version and appVersion and config/manager's image tag are
// one version (make set-version writes them).
func TestRepositoryVersionsAgree(t *testing.T) {
	t.Parallel()
	if err := repositoryVersionsAgree(repoRoot(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSetVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, f := range []string{chartFile, managerKustomize} {
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := setVersion(root, "v1.2.3"); err == nil {
		t.Error("set-version accepted a leading v")
	}
	if err := setVersion(root, "1.2.3-rc.1"); err != nil {
		t.Fatal(err)
	}
	if err := repositoryVersionsAgree(root); err != nil {
		t.Fatal(err)
	}
	if _, app, _ := chartVersions(root); app != "1.2.3-rc.1" {
		t.Errorf("appVersion %q after set-version", app)
	}
	raw, _ := os.ReadFile(filepath.Join(root, managerKustomize))
	if !bytes.Contains(raw, []byte("# The released image")) {
		t.Errorf("set-version dropped the comments of %s:\n%s", managerKustomize, raw)
	}
}

// Randomized: the archive writers' output depends on the members' names,
// modes and contents only, never on their order or the time of the build.
func TestArchiveWritersAreDeterministic(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(21, 1))
	for range 20 {
		var members []member
		for i := range 1 + r.IntN(6) {
			data := make([]byte, r.IntN(1500))
			for j := range data {
				data[j] = byte(r.IntN(4))
			}
			mode := os.FileMode(0o644)
			if r.IntN(2) == 0 {
				mode = 0o755
			}
			members = append(members, member{name: fmt.Sprintf("f%d", i), mode: mode, data: data})
		}
		shuffled := append([]member(nil), members...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for name, write := range map[string]func([]member, time.Time) ([]byte, error){"tar.gz": tarGz, "zip": zipArchive} {
			a, err := write(members, testTime)
			if err != nil {
				t.Fatal(err)
			}
			b, err := write(shuffled, testTime)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatalf("%s: member order changed the bytes", name)
			}
			c, _ := write(members, testTime.Add(time.Second))
			if bytes.Equal(a, c) {
				t.Fatalf("%s: the time is not in the archive", name)
			}
			p := filepath.Join(t.TempDir(), "a."+name)
			if err := os.WriteFile(p, a, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readArchive(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range members {
				if g := got[m.name]; !bytes.Equal(g.data, m.data) || g.mode.Perm() != m.mode {
					t.Fatalf("%s: %s read back as mode %v, %d bytes", name, m.name, g.mode, len(g.data))
				}
			}
		}
	}
	if _, err := tarGz([]member{{name: "a"}, {name: "a"}}, testTime); err == nil {
		t.Error("duplicate members accepted")
	}
}

func hostPlatform() platform { return platform{runtime.GOOS, runtime.GOARCH} }

// hostVersion is the version the tests stamp into the host platform's
// archive, which they build once and share (a link of the plugin takes a
// while on 2 cores).
const hostVersion = "1.2.3-snapshot-1a2b3c4d5e6f"

var hostArchive struct {
	once sync.Once
	data []byte
	err  error
}

func sharedHostArchive(t *testing.T) []byte {
	t.Helper()
	hostArchive.once.Do(func() {
		work, err := os.MkdirTemp("", "pullsecrets-release-test-")
		if err != nil {
			hostArchive.err = err
			return
		}
		defer os.RemoveAll(work)
		hostArchive.data, hostArchive.err = pluginArchive(context.Background(), repoRoot(t), hostPlatform(), testStamp(hostVersion), testTime, work)
	})
	if hostArchive.err != nil {
		t.Fatal(hostArchive.err)
	}
	return hostArchive.data
}

func testStamp(v string) version.Stamp {
	return version.Stamp{Version: v, Commit: testCommit, Date: testTime.Format(time.RFC3339), Dirty: "false"}
}

// The plugin archive of one platform, built twice from scratch folders:
// the same bytes (make test's share of make release-snapshot's
// reproducibility; the whole snapshot is checked by hand, docs/install.md).
func TestPluginArchiveIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin twice (skipped with -short)")
	}
	t.Parallel()
	root := repoRoot(t)
	p := hostPlatform()
	a := sharedHostArchive(t)
	b, err := pluginArchive(context.Background(), root, p, testStamp(hostVersion), testTime, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("two builds of the %s archive differ: %s and %s", p, sha256Hex(a), sha256Hex(b))
	}
	path := filepath.Join(t.TempDir(), archiveName(hostVersion, p))
	if err := os.WriteFile(path, a, 0o644); err != nil {
		t.Fatal(err)
	}
	members, err := readArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{pluginName: 0o755, completionName: 0o755, licenseFile: 0o644}
	if len(members) != len(want) {
		t.Errorf("archive members %v, want %v", members, want)
	}
	for name, mode := range want {
		if m, ok := members[name]; !ok || m.mode.Perm() != mode {
			t.Errorf("archive member %s: present %v, mode %v; want %v", name, ok, m.mode, mode)
		}
	}
}

// builtArchives builds the host platform's archive for real and, for the
// other platforms, archives of the same shape holding a stub, as the
// krew manifest needs one archive per platform.
func builtArchives(t *testing.T, v string) (dir string, digests map[string]string) {
	t.Helper()
	dir = t.TempDir()
	digests = map[string]string{}
	for _, p := range pluginPlatforms {
		var data []byte
		var err error
		if p == hostPlatform() {
			data = sharedHostArchive(t)
		} else {
			members := []member{{name: p.exe(pluginName), mode: 0o755, data: []byte("stub")}, {name: licenseFile, mode: 0o644, data: []byte("license")}}
			if p.os == "windows" {
				members = append(members, member{name: completionName + ".bat", mode: 0o755, data: []byte(windowsCompletion)})
				data, err = zipArchive(members, testTime)
			} else {
				members = append(members, member{name: completionName, mode: 0o755, data: []byte("#!/bin/sh\n")})
				data, err = tarGz(members, testTime)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		name := archiveName(v, p)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		digests[name] = sha256Hex(data)
	}
	return dir, digests
}

// clientVersion runs `kubectl-pullsecrets version --client -o json`.
func clientVersion(t *testing.T, bin string) version.Info {
	t.Helper()
	out, err := exec.Command(bin, "version", "--client", "-o", "json").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	var r cliversion.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	return r.ClientVersion
}

// The manifest generated from the archives passes krew's own
// validate-krew-manifest, and `krew install --manifest --archive` installs
// every platform from its local archive (checking its sha256); the
// installed plugin reports the version and commit its archive is named for.
// A tampered archive is refused.
func TestKrewManifestInstalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin and runs krew (skipped with -short)")
	}
	t.Parallel()
	root := repoRoot(t)
	const v = hostVersion
	dir, digests := builtArchives(t, v)
	manifest, err := krewManifest(root, v, digests)
	if err != nil {
		t.Fatal(err)
	}
	mpath := filepath.Join(t.TempDir(), "pullsecrets.yaml")
	if err := os.WriteFile(mpath, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := validateKrewManifest(ctx, root, mpath); err != nil {
		t.Fatal(err)
	}
	for _, p := range pluginPlatforms {
		bin, err := krewInstall(ctx, root, mpath, filepath.Join(dir, archiveName(v, p)), p, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if p != hostPlatform() {
			continue
		}
		info := clientVersion(t, bin)
		if info.Version != v || info.Commit != testCommit || !strings.Contains(archiveName(v, p), "_"+info.Version+"_") {
			t.Errorf("the plugin installed from %s reports %+v", archiveName(v, p), info)
		}
		for _, f := range []string{completionName, licenseFile} {
			if _, err := os.Stat(filepath.Join(filepath.Dir(mustEval(t, bin)), f)); err != nil {
				t.Errorf("krew did not install %s: %v", f, err)
			}
		}
	}
	// A different archive under the same name: krew refuses it.
	tampered := filepath.Join(t.TempDir(), archiveName(v, hostPlatform()))
	other, err := tarGz([]member{{name: pluginName, mode: 0o755, data: []byte("not it")}}, testTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tampered, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := krewInstall(ctx, root, mpath, tampered, hostPlatform(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("krew installed a tampered archive (err %v)", err)
	}
}

func mustEval(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The binaries of a release report the version and commit its archives are
// named for: the plugin's `version -o json` and the controller's --version.
func TestBinariesReportTheArchiveVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both binaries (skipped with -short)")
	}
	t.Parallel()
	root := repoRoot(t)
	const v = hostVersion
	p := hostPlatform()
	data := sharedHostArchive(t)
	path := filepath.Join(t.TempDir(), archiveName(v, p))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	plugin, err := extractMember(path, p.exe(pluginName), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	info := clientVersion(t, plugin)
	want := version.Info{Version: v, Commit: testCommit, Date: testTime.Format(time.RFC3339), GoVersion: runtime.Version(), Platform: p.String()}
	if info != want {
		t.Errorf("plugin of %s reports %+v, want %+v", filepath.Base(path), info, want)
	}
	controller := filepath.Join(t.TempDir(), controllerName)
	if err := goBuild(context.Background(), root, "./cmd/pullsecrets-controller", p, testStamp(v), controller); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(controller, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != controllerName+" "+want.String() {
		t.Errorf("controller --version = %q, want %q", got, controllerName+" "+want.String())
	}
}

// controllerDeployment finds the controller Deployment in rendered manifests.
func controllerDeployment(t *testing.T, manifests []byte) *appsv1.Deployment {
	t.Helper()
	dec := utilyaml.NewYAMLReader(bufioReader(manifests))
	codec := serializer.NewCodecFactory(scheme.Scheme).UniversalDeserializer()
	for {
		doc, err := dec.Read()
		if err != nil {
			break
		}
		obj, gvk, err := codec.Decode(doc, nil, nil)
		if err != nil || gvk.Kind != "Deployment" {
			continue
		}
		if d := obj.(*appsv1.Deployment); d.Name == controllerName {
			return d
		}
	}
	t.Fatal("no pullsecrets-controller Deployment")
	return nil
}

// install.yaml is config/default with the image pinned by digest (and
// tagged with the version, which `kubectl pullsecrets version` reads).
func TestInstallYAML(t *testing.T) {
	t.Parallel()
	out, err := installYAML(repoRoot(t), "1.2.3", testDigest)
	if err != nil {
		t.Fatal(err)
	}
	d := controllerDeployment(t, out)
	if got, want := d.Spec.Template.Spec.Containers[0].Image, imageRepository+":1.2.3@"+testDigest; got != want {
		t.Errorf("install.yaml runs %s, want %s", got, want)
	}
	if c := cliversion.FromDeployment(d); c.Version != "1.2.3" {
		t.Errorf("kubectl pullsecrets version would read %+v", c)
	}
	for _, kind := range []string{"CustomResourceDefinition", "ClusterRole", "ValidatingAdmissionPolicy", "Namespace"} {
		if !bytes.Contains(out, []byte("kind: "+kind+"\n")) {
			t.Errorf("install.yaml has no %s", kind)
		}
	}
}

// The chart archive: the same bytes twice, the release version inside.
func TestChartPackageIsReproducible(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	a, err := packageChart(root, "1.2.3", testTime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := packageChart(root, "1.2.3", testTime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two chart packages differ")
	}
	p := filepath.Join(t.TempDir(), chartArchiveName("1.2.3"))
	if err := os.WriteFile(p, a, 0o644); err != nil {
		t.Fatal(err)
	}
	members, err := readArchive(p)
	if err != nil {
		t.Fatal(err)
	}
	chart := members["pullsecrets/Chart.yaml"].data
	if !bytes.Contains(chart, []byte("\nversion: 1.2.3\n")) || !bytes.Contains(chart, []byte("\nappVersion: \"1.2.3\"\n")) {
		t.Errorf("packaged Chart.yaml:\n%s", chart)
	}
	for _, f := range []string{"pullsecrets/values.yaml", "pullsecrets/templates/deployment.yaml", "pullsecrets/crds/pullsecrets.dev_clusterpullsecrets.yaml"} {
		if _, ok := members[f]; !ok {
			t.Errorf("chart archive has no %s", f)
		}
	}
}

// The packaged chart passes helm lint --strict and renders the release: the
// image by the digest given, the version where `kubectl pullsecrets
// version` reads it.
func TestPackagedChartLintsAndRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("needs bin/helm (make tools; skipped with -short)")
	}
	t.Parallel()
	root := repoRoot(t)
	data, err := packageChart(root, "1.2.3", testTime)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), chartArchiveName("1.2.3"))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := helmLint(ctx, root, p); err != nil {
		t.Fatal(err)
	}
	out, err := helmTemplate(ctx, root, p, "pullsecrets-system", "--set", "image.digest="+testDigest)
	if err != nil {
		t.Fatal(err)
	}
	d := controllerDeployment(t, out)
	if got := d.Spec.Template.Spec.Containers[0].Image; got != imageRepository+"@"+testDigest {
		t.Errorf("the chart runs %s", got)
	}
	if c := cliversion.FromDeployment(d); c.Version != "1.2.3" || c.VersionFrom != "label helm.sh/chart" {
		t.Errorf("kubectl pullsecrets version would read %+v", c)
	}
	out, err = helmTemplate(ctx, root, p, "pullsecrets-system")
	if err != nil {
		t.Fatal(err)
	}
	if got := controllerDeployment(t, out).Spec.Template.Spec.Containers[0].Image; got != imageRepository+":1.2.3" {
		t.Errorf("without a digest the chart runs %s, want the release's tag", got)
	}
}

func TestImageSBOM(t *testing.T) {
	t.Parallel()
	bom := func(name string, deps ...string) map[string]any {
		var comps []any
		for _, d := range deps {
			comps = append(comps, map[string]any{"bom-ref": d, "name": d})
		}
		return map[string]any{
			"specVersion":  "1.6",
			"metadata":     map[string]any{"tools": map[string]any{}, "component": map[string]any{"bom-ref": name, "name": name}},
			"components":   comps,
			"dependencies": []any{map[string]any{"ref": name, "dependsOn": deps}},
		}
	}
	raw, err := imageSBOM([]map[string]any{bom("controller", "a", "b"), bom("ecr", "b", "c")}, "1.2.3", "arm64", testDigest)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Metadata struct {
			Component struct{ Type, Purl, Version string }
		}
		Components   []struct{ Name string }
		Dependencies []struct {
			Ref       string
			DependsOn []string
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Metadata.Component.Type != "container" || got.Metadata.Component.Version != "1.2.3" ||
		got.Metadata.Component.Purl != "pkg:oci/pullsecrets-controller@sha256%3A"+testDigest[7:]+"?arch=arm64&repository_url=ghcr.io%2Fpullsecrets%2Fpullsecrets-controller" {
		t.Errorf("subject %+v", got.Metadata.Component)
	}
	var names []string
	for _, c := range got.Components {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "controller,a,b,ecr,c" {
		t.Errorf("components %v", names)
	}
	if len(got.Dependencies) != 3 || strings.Join(got.Dependencies[0].DependsOn, ",") != "controller,ecr" {
		t.Errorf("dependencies %+v", got.Dependencies)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
