package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// controllerPath is where the controller lives in the image and what the
// entrypoint runs.
const controllerPath = "/pullsecrets-controller"

// goBuildFlags are the controller's build flags: no absolute paths, no VCS
// stamp (the revision goes into a label instead, so that a dirty tree or a
// source tarball builds the same binary), no symbol tables, no build id.
var goBuildFlags = []string{"-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid="}

// options says what to build and where to write it.
type options struct {
	root      string // the repository root, whose ./cmd/pullsecrets-controller is built
	ref       string // the image's name, written into the layout and the tarball
	layoutDir string // OCI image layout to (re)create; empty: none
	tarball   string // docker-loadable archive (docker load, kind load image-archive); empty: none
	arch      string // GOARCH: amd64 or arm64
	providers string // folder of credential provider binaries for /credential-providers/; empty: none
	epoch     int64  // SOURCE_DATE_EPOCH: every timestamp in the image
	version   string // org.opencontainers.image.version
	revision  string // org.opencontainers.image.revision; empty: no label
	goCache   string // GOCACHE for the controller build; empty: the caller's
	ldflags   string // more -ldflags for the controller (the version stamp: -X ...); empty: none
}

// result is what was built.
type result struct {
	digest v1.Hash // the manifest digest: what a registry serves and a Pod may pin
	size   int64   // manifest, config and compressed layers, in bytes
}

// build builds the controller binary, assembles the image and writes the
// outputs that opts names.
func build(ctx context.Context, opts options) (result, error) {
	ref, err := name.NewTag(opts.ref, name.StrictValidation)
	if err != nil {
		return result{}, fmt.Errorf("image reference %q: %w", opts.ref, err)
	}
	if _, ok := elfMachine[opts.arch]; !ok {
		return result{}, fmt.Errorf("unsupported architecture %q (amd64 or arm64)", opts.arch)
	}
	tmp, err := os.MkdirTemp("", "pullsecrets-image-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "pullsecrets-controller")
	if err := buildController(ctx, opts, bin); err != nil {
		return result{}, err
	}
	img, err := assemble(opts, bin)
	if err != nil {
		return result{}, err
	}
	if opts.layoutDir != "" {
		if err := writeLayout(opts.layoutDir, ref, img); err != nil {
			return result{}, err
		}
	}
	if opts.tarball != "" {
		if err := os.MkdirAll(filepath.Dir(opts.tarball), 0o755); err != nil {
			return result{}, err
		}
		if err := tarball.WriteToFile(opts.tarball, ref, img); err != nil {
			return result{}, fmt.Errorf("write %s: %w", opts.tarball, err)
		}
	}
	digest, err := img.Digest()
	if err != nil {
		return result{}, err
	}
	size, err := imageSize(img)
	if err != nil {
		return result{}, err
	}
	return result{digest: digest, size: size}, nil
}

// buildController builds a static controller binary for linux/opts.arch.
// Every variable that changes the output is set here rather than inherited.
func buildController(ctx context.Context, opts options, out string) error {
	args := append([]string{"build"}, goBuildFlags...)
	if opts.ldflags != "" {
		// The version stamp (hack/release ldflags): -X flags after ours.
		args[len(args)-1] += " " + opts.ldflags
	}
	args = append(args, "-o", out, "./cmd/pullsecrets-controller")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = opts.root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS=linux", "GOARCH="+opts.arch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFLAGS=-mod=readonly", "GOWORK=off",
	)
	if opts.goCache != "" {
		cmd.Env = append(cmd.Env, "GOCACHE="+opts.goCache)
	}
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/pullsecrets-controller: %w", err)
	}
	return checkStaticELF(out, opts.arch)
}

// assemble puts the image together from scratch: a base layer (users, CA
// certificates), the credential providers if any, and the controller last,
// since it changes most often.
func assemble(opts options, controller string) (v1.Image, error) {
	mtime := time.Unix(opts.epoch, 0).UTC()
	created := v1.Time{Time: mtime}

	base, err := baseEntries()
	if err != nil {
		return nil, err
	}
	layers := []struct {
		entries   []entry
		createdBy string
	}{{base, "pullsecrets hack/image: /etc/passwd, /etc/group, /etc/nsswitch.conf, CA certificates, /tmp, /home/nonroot"}}
	if opts.providers != "" {
		providers, err := providerEntries(opts.providers, opts.arch)
		if err != nil {
			return nil, err
		}
		layers = append(layers, struct {
			entries   []entry
			createdBy string
		}{providers, "pullsecrets hack/image: /credential-providers/"})
	}
	bin, err := os.ReadFile(controller)
	if err != nil {
		return nil, err
	}
	layers = append(layers, struct {
		entries   []entry
		createdBy string
	}{[]entry{file(controllerPath[1:], 0o755, bin)}, "pullsecrets hack/image: " + controllerPath})

	labels := map[string]string{
		"org.opencontainers.image.title":       "pullsecrets-controller",
		"org.opencontainers.image.description": "ClusterPullSecret controller",
		"org.opencontainers.image.source":      "https://github.com/pullsecrets/pullsecrets",
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.version":     opts.version,
	}
	if opts.revision != "" {
		labels["org.opencontainers.image.revision"] = opts.revision
	}
	cfg := &v1.ConfigFile{
		Architecture: opts.arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", nonrootUID, nonrootGID),
			Entrypoint: []string{controllerPath},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	if opts.arch == "arm64" {
		cfg.Variant = "v8"
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		raw, err := layerTar(l.entries, mtime)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(
			func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
			tarball.WithMediaType(types.OCILayer),
			tarball.WithCompressionLevel(gzip.BestCompression),
			tarball.WithCompressedCaching,
		)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{
			Layer:   layer,
			History: v1.History{Created: created, CreatedBy: l.createdBy},
		})
		if err != nil {
			return nil, err
		}
	}
	return img, nil
}

// writeLayout replaces dir with an OCI image layout holding img alone,
// named for containerd (ctr import) and by tag (OCI ref.name).
func writeLayout(dir string, ref name.Tag, img v1.Image) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("create layout %s: %w", dir, err)
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	}))
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return size, nil
}
