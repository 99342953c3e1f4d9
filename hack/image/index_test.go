package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParseArchsAndProviders(t *testing.T) {
	archs, err := parseArchs("arm64, amd64,arm64")
	if err != nil || len(archs) != 2 || archs[0] != "amd64" || archs[1] != "arm64" {
		t.Fatalf("parseArchs = %v, %v", archs, err)
	}
	if _, err := parseArchs("amd64,s390x"); err == nil {
		t.Error("parseArchs accepted s390x")
	}
	if _, err := parseProviders("/p", archs); err == nil {
		t.Error("one folder for two architectures was accepted")
	}
	for _, bad := range []string{"amd64=/a", "amd64=/a,arm64=/b,amd64=/c", "amd64=/a,s390x=/b", "amd64"} {
		if _, err := parseProviders(bad, archs); err == nil {
			t.Errorf("parseProviders(%q) accepted", bad)
		}
	}
	got, err := parseProviders("arm64=/b,amd64=/a", archs)
	if err != nil || got["amd64"] != "/a" || got["arm64"] != "/b" {
		t.Errorf("parseProviders = %v, %v", got, err)
	}
	if got, err := parseProviders("/p", []string{"amd64"}); err != nil || got["amd64"] != "/p" {
		t.Errorf("parseProviders(one) = %v, %v", got, err)
	}
}

// The release's image: one OCI index of a linux/amd64 and a linux/arm64
// image, each built for its architecture, reproducible.
func TestImageIndex(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the controller twice (skipped with -short)")
	}
	opts := testOptions(t)
	opts.tarball = ""
	ctx := context.Background()
	res, err := buildIndex(ctx, opts, []string{"amd64", "arm64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(opts.layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(outer.Manifests) != 1 || outer.Manifests[0].Digest != res.digest || outer.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("layout holds %+v, want the index %s", outer.Manifests, res.digest)
	}
	inner, err := idx.ImageIndex(res.digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := inner.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
	if len(m.Manifests) != 2 {
		t.Fatalf("index has %d manifests", len(m.Manifests))
	}
	for i, d := range m.Manifests {
		if d.Platform == nil || !d.Platform.Equals(want[i]) || d.Digest != res.platforms[want[i].Architecture] {
			t.Errorf("manifest %d: %+v, want %+v", i, d, want[i])
		}
		img, err := inner.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != want[i].Architecture || cfg.OS != "linux" {
			t.Errorf("image %d config says %s/%s", i, cfg.OS, cfg.Architecture)
		}
		files := map[string]tarFile{}
		rc := mutate.Extract(img)
		for _, f := range readTar(t, rc) {
			files[f.hdr.Name] = f
		}
		rc.Close()
		dir := t.TempDir()
		bin := filepath.Join(dir, "controller")
		if err := os.WriteFile(bin, files["pullsecrets-controller"].data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := checkStaticELF(bin, want[i].Architecture); err != nil {
			t.Errorf("image %d: %v", i, err)
		}
	}
	again := opts
	again.layoutDir = filepath.Join(t.TempDir(), "layout")
	res2, err := buildIndex(ctx, again, []string{"arm64", "amd64"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res2.digest != res.digest {
		t.Errorf("a second build gave index %s, the first %s", res2.digest, res.digest)
	}
}
