package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// indexResult is what buildIndex built.
type indexResult struct {
	digest    v1.Hash            // the index digest: what a release publishes and pins
	platforms map[string]v1.Hash // GOARCH -> that image's manifest digest
}

// parseArchs splits --arch (amd64,arm64) into sorted, unique architectures.
func parseArchs(s string) ([]string, error) {
	var archs []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if _, ok := elfMachine[a]; !ok {
			return nil, fmt.Errorf("unsupported architecture %q (amd64 or arm64)", a)
		}
		if !slices.Contains(archs, a) {
			archs = append(archs, a)
		}
	}
	slices.Sort(archs)
	return archs, nil
}

// parseProviders reads --credential-providers: one folder for every
// architecture, or arch=folder pairs (amd64=/p/amd64,arm64=/p/arm64), since
// each architecture needs binaries of its own.
func parseProviders(s string, archs []string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	if !strings.Contains(s, "=") {
		if len(archs) > 1 {
			return nil, fmt.Errorf("--credential-providers %s: give arch=folder for each of %v", s, archs)
		}
		out[archs[0]] = s
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		arch, dir, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(archs, arch) || out[arch] != "" {
			return nil, fmt.Errorf("--credential-providers: %q is not arch=folder for one of %v", kv, archs)
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		out[arch] = abs
	}
	for _, a := range archs {
		if out[a] == "" {
			return nil, fmt.Errorf("--credential-providers: no folder for %s", a)
		}
	}
	return out, nil
}

// buildIndex builds the image for each architecture and puts them in one
// OCI image index, the multi-arch image a registry serves under one tag:
// a runtime picks its platform's manifest. Entries are in architecture
// order, so the index digest depends only on the images.
func buildIndex(ctx context.Context, opts options, archs []string, providers map[string]string) (indexResult, error) {
	ref, err := name.NewTag(opts.ref, name.StrictValidation)
	if err != nil {
		return indexResult{}, fmt.Errorf("image reference %q: %w", opts.ref, err)
	}
	tmp, err := os.MkdirTemp("", "pullsecrets-index-")
	if err != nil {
		return indexResult{}, err
	}
	defer os.RemoveAll(tmp)
	res := indexResult{platforms: map[string]v1.Hash{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range slices.Sorted(slices.Values(archs)) {
		o := opts
		o.arch, o.providers, o.layoutDir, o.tarball = arch, providers[arch], "", ""
		bin := filepath.Join(tmp, "pullsecrets-controller-"+arch)
		if err := buildController(ctx, o, bin); err != nil {
			return indexResult{}, err
		}
		img, err := assemble(o, bin)
		if err != nil {
			return indexResult{}, err
		}
		d, err := img.Digest()
		if err != nil {
			return indexResult{}, err
		}
		res.platforms[arch] = d
		p := &v1.Platform{OS: "linux", Architecture: arch}
		if arch == "arm64" {
			p.Variant = "v8"
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
	}
	if res.digest, err = idx.Digest(); err != nil {
		return indexResult{}, err
	}
	if opts.layoutDir != "" {
		if err := os.RemoveAll(opts.layoutDir); err != nil {
			return indexResult{}, err
		}
		p, err := layout.Write(opts.layoutDir, empty.Index)
		if err != nil {
			return indexResult{}, fmt.Errorf("create layout %s: %w", opts.layoutDir, err)
		}
		if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": ref.TagStr(),
			"io.containerd.image.name":          ref.Name(),
		})); err != nil {
			return indexResult{}, err
		}
	}
	return res, nil
}
