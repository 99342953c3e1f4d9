package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	testRef   = "ghcr.io/pullsecrets/pullsecrets-controller:0.0.0-test"
	testEpoch = 1700000000
)

// coldCacheEnv makes TestImageReproducible build the second controller binary
// with an empty Go build cache, so that the compiler and linker really run
// twice (several minutes on 2 cores). make image-verify sets it.
const coldCacheEnv = "PULLSECRETS_IMAGE_COLD_CACHE"

// What the image may hold, and nothing else (as mutate.Extract names them).
var allowedPaths = []string{
	"etc", "etc/group", "etc/nsswitch.conf", "etc/passwd",
	"etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
	"home", "home/nonroot", "tmp",
	"pullsecrets-controller",
}

// Names of shells, busybox and package managers, looked for in every layer.
var forbiddenNames = []string{
	"sh", "bash", "ash", "dash", "zsh", "ksh", "busybox", "toybox",
	"apk", "apt", "apt-get", "dpkg", "rpm", "yum", "dnf", "microdnf", "tdnf", "pip", "pip3",
}

func testOptions(t *testing.T) options {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return options{
		root:      root,
		ref:       testRef,
		layoutDir: filepath.Join(dir, "layout"),
		tarball:   filepath.Join(dir, "image.tar"),
		arch:      "amd64",
		epoch:     testEpoch,
		version:   "0.0.0-test",
		revision:  "0123456789abcdef0123456789abcdef01234567",
	}
}

func buildImage(t *testing.T, opts options) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := build(ctx, opts)
	if err != nil {
		t.Fatalf("build image: %v", err)
	}
	return res
}

// The image that make image builds, built once for the tests that read it.
var (
	defaultOnce   sync.Once
	defaultOpts   options
	defaultResult result
	defaultErr    error
)

func defaultImage(t *testing.T) (options, result) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the controller image (skipped with -short)")
	}
	defaultOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pullsecrets-image-test-")
		if err != nil {
			defaultErr = err
			return
		}
		defaultOpts = testOptions(t)
		defaultOpts.layoutDir = filepath.Join(dir, "layout")
		defaultOpts.tarball = filepath.Join(dir, "image.tar")
		defaultResult, defaultErr = build(context.Background(), defaultOpts)
	})
	if defaultErr != nil {
		t.Fatalf("build image: %v", defaultErr)
	}
	return defaultOpts, defaultResult
}

func TestMain(m *testing.M) {
	code := m.Run()
	if defaultOpts.layoutDir != "" {
		os.RemoveAll(filepath.Dir(defaultOpts.layoutDir))
	}
	os.Exit(code)
}

// readLayout reads the one image of an OCI layout, as crane or containerd
// would, and checks that it has the digest the build reported.
func readLayout(t *testing.T, dir string, want v1.Hash) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != want {
		t.Fatalf("layout %s holds %v, want only %s", dir, m.Manifests, want)
	}
	if got := m.Manifests[0].Annotations["io.containerd.image.name"]; got != testRef {
		t.Errorf("layout names the image %q, want %q", got, testRef)
	}
	img, err := idx.Image(want)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type tarFile struct {
	hdr  *tar.Header
	data []byte
}

func readTar(t *testing.T, r io.Reader) []tarFile {
	t.Helper()
	var files []tarFile
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, tarFile{hdr, data})
	}
}

func TestImageContents(t *testing.T) {
	opts, res := defaultImage(t)
	img := readLayout(t, opts.layoutDir, res.digest)

	if mt, err := img.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %q (%v), want %q", mt, err, types.OCIManifestSchema1)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (non-root)", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/pullsecrets-controller"}) || len(cfg.Config.Cmd) != 0 {
		t.Errorf("Entrypoint = %q, Cmd = %q; want [/pullsecrets-controller] and no Cmd", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if !cfg.Created.Equal(time.Unix(testEpoch, 0)) {
		t.Errorf("Created = %s, want SOURCE_DATE_EPOCH %s", cfg.Created, time.Unix(testEpoch, 0).UTC())
	}
	for _, h := range cfg.History {
		if !h.Created.Equal(time.Unix(testEpoch, 0)) {
			t.Errorf("history %q created %s, want SOURCE_DATE_EPOCH", h.CreatedBy, h.Created)
		}
	}
	if got := cfg.Config.Labels["org.opencontainers.image.revision"]; got != opts.revision {
		t.Errorf("revision label %q, want %q", got, opts.revision)
	}

	// Every layer: no shell or package manager, every timestamp the epoch,
	// owners numeric.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range readTar(t, rc) {
			if slices.Contains(forbiddenNames, path.Base(strings.TrimSuffix(f.hdr.Name, "/"))) {
				t.Errorf("layer %d holds %s: no shell or package manager may be in the image", i, f.hdr.Name)
			}
			if !f.hdr.ModTime.Equal(time.Unix(testEpoch, 0)) || f.hdr.Uname != "" || f.hdr.Gname != "" {
				t.Errorf("layer %d: %s has mtime %s, owner %q:%q; want the epoch and numeric owners", i, f.hdr.Name, f.hdr.ModTime, f.hdr.Uname, f.hdr.Gname)
			}
		}
		rc.Close()
	}

	// The file system as a container sees it: exactly the allowed paths.
	files := map[string]tarFile{}
	rc := mutate.Extract(img)
	for _, f := range readTar(t, rc) {
		files[f.hdr.Name] = f
	}
	rc.Close()
	var got []string
	for name := range files {
		got = append(got, name)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(allowedPaths))
	if !slices.Equal(got, want) {
		t.Errorf("image files:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	controller, ok := files["pullsecrets-controller"]
	if !ok {
		t.Fatal("no /pullsecrets-controller")
	}
	if controller.hdr.Mode != 0o755 || controller.hdr.Uid != 0 {
		t.Errorf("/pullsecrets-controller mode %o owner %d, want 755 owned by root (not writable by the controller)", controller.hdr.Mode, controller.hdr.Uid)
	}
	bin := filepath.Join(t.TempDir(), "pullsecrets-controller")
	if err := os.WriteFile(bin, controller.data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStaticELF(bin, "amd64"); err != nil {
		t.Errorf("/pullsecrets-controller: %v", err)
	}

	if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", files["etc/passwd"].data)
	}
	if home := files["home/nonroot"].hdr; home == nil || home.Uid != nonrootUID || home.Gid != nonrootGID {
		t.Errorf("/home/nonroot is not owned by 65532:65532")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(files["etc/ssl/certs/ca-certificates.crt"].data) {
		t.Fatal("/etc/ssl/certs/ca-certificates.crt holds no certificate")
	}
	if n := strings.Count(string(files["etc/ssl/certs/ca-certificates.crt"].data), "BEGIN CERTIFICATE"); n < 100 {
		t.Errorf("the CA bundle has %d certificates, want the whole root store (over 100)", n)
	}

	// The docker archive holds the same image under the same name.
	tagged, err := tarball.ImageFromPath(opts.tarball, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarCfg, _ := tagged.ConfigName()
	layoutCfg, _ := img.ConfigName()
	if tarCfg != layoutCfg {
		t.Errorf("archive config %s, layout config %s: not the same image", tarCfg, layoutCfg)
	}
	tarLayers, _ := tagged.Layers()
	for i, l := range tarLayers {
		got, _ := l.DiffID()
		want, _ := layers[i].DiffID()
		if got != want {
			t.Errorf("archive layer %d: %s, layout: %s", i, got, want)
		}
	}
}

func TestImageReproducible(t *testing.T) {
	opts, first := defaultImage(t)
	again := testOptions(t)
	if os.Getenv(coldCacheEnv) != "" {
		again.goCache = t.TempDir()
		t.Logf("building the controller again with an empty Go build cache")
	}
	second := buildImage(t, again)
	if first.digest != second.digest {
		t.Fatalf("two builds of the same source: %s and %s", first.digest, second.digest)
	}
	for _, f := range []func(options) string{
		func(o options) string { return o.tarball },
		func(o options) string { return filepath.Join(o.layoutDir, "index.json") },
	} {
		a, err := os.ReadFile(f(opts))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f(again))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ", f(opts), f(again))
		}
	}
	t.Logf("digest %s, %d bytes", first.digest, first.size)

	later := testOptions(t)
	later.epoch++
	if third := buildImage(t, later); third.digest == first.digest {
		t.Errorf("SOURCE_DATE_EPOCH is not in the image: the digest did not change")
	}
}

// buildFakeProvider builds a static stand-in for a credential provider.
func buildFakeProvider(t *testing.T, dir, name string) {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module fakeprovider\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the fake provider: %v\n%s", err, out)
	}
}

func TestImageCredentialProviders(t *testing.T) {
	_, plain := defaultImage(t)

	// The same two binaries, in folders made differently: other mtimes,
	// modes and creation order must not change the image.
	dirA, dirB := t.TempDir(), t.TempDir()
	buildFakeProvider(t, dirA, "ecr-credential-provider")
	buildFakeProvider(t, dirA, "acr-credential-provider")
	for _, name := range []string{"ecr-credential-provider", "acr-credential-provider"} {
		data, err := os.ReadFile(filepath.Join(dirA, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirB, name), data, 0o700); err != nil {
			t.Fatal(err)
		}
		old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		if err := os.Chtimes(filepath.Join(dirB, name), old, old); err != nil {
			t.Fatal(err)
		}
	}

	a := testOptions(t)
	a.providers = dirA
	resA := buildImage(t, a)
	b := testOptions(t)
	b.providers = dirB
	resB := buildImage(t, b)
	if resA.digest != resB.digest {
		t.Errorf("the same providers from two folders: %s and %s", resA.digest, resB.digest)
	}
	if resA.digest == plain.digest {
		t.Fatal("the providers did not change the image")
	}

	img := readLayout(t, a.layoutDir, resA.digest)
	rc := mutate.Extract(img)
	defer rc.Close()
	var providers []string
	for _, f := range readTar(t, rc) {
		if rest, ok := strings.CutPrefix(f.hdr.Name, "credential-providers/"); ok && rest != "" {
			providers = append(providers, rest)
			if f.hdr.Mode != 0o755 || f.hdr.Uid != 0 {
				t.Errorf("/%s: mode %o owner %d, want 755 owned by root", f.hdr.Name, f.hdr.Mode, f.hdr.Uid)
			}
		}
	}
	if want := []string{"acr-credential-provider", "ecr-credential-provider"}; !slices.Equal(providers, want) {
		t.Errorf("/credential-providers/ holds %v, want %v", providers, want)
	}
}
