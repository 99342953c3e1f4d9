package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// binarySBOM writes a CycloneDX SBOM of a Go binary with cyclonedx-gomod
// (pinned in hack/tools): the modules its build information lists, the Go
// standard library, and version v as the main component's. No serial
// number and no timestamp, so the same binary gives the same SBOM.
func binarySBOM(ctx context.Context, root, bin, v, out string) error {
	gomod, err := tool(root, "cyclonedx-gomod")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	_, err = run(ctx, root, nil, gomod, "bin", "-json", "-noserial", "-notimestamp", "-std", "-version", v, "-output", out, bin)
	return err
}

// sboms writes dist/sbom/: one SBOM per plugin archive's binary and one per
// platform of the controller image.
func sboms(ctx context.Context, root, dist, v string, withImage bool, digest string) error {
	work, err := os.MkdirTemp("", "pullsecrets-sbom-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, p := range pluginPlatforms {
		name := archiveName(v, p)
		bin, err := extractMember(filepath.Join(dist, name), p.exe(pluginName), filepath.Join(work, p.os+"-"+p.arch))
		if err != nil {
			return err
		}
		out := filepath.Join(dist, "sbom", strings.TrimSuffix(strings.TrimSuffix(name, ".tar.gz"), ".zip")+".cdx.json")
		if err := binarySBOM(ctx, root, bin, v, out); err != nil {
			return err
		}
	}
	logf("SBOMs of the plugin binaries")
	if !withImage {
		return nil
	}
	index, m, err := readIndex(filepath.Join(dist, "image"), digest)
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		img, err := index.Image(d.Digest)
		if err != nil {
			return err
		}
		arch := d.Platform.Architecture
		dir := filepath.Join(work, "image-"+arch)
		bins, err := extractExecutables(img, dir)
		if err != nil {
			return err
		}
		var boms []map[string]any
		for _, b := range bins {
			out := filepath.Join(work, "sbom-"+arch+"-"+filepath.Base(b)+".json")
			version := ""
			if filepath.Base(b) == controllerName {
				version = v
			}
			if err := binarySBOM(ctx, root, b, version, out); err != nil {
				return err
			}
			bom, err := readJSON(out)
			if err != nil {
				return err
			}
			boms = append(boms, bom)
		}
		merged, err := imageSBOM(boms, v, arch, d.Digest.String())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dist, "sbom", fmt.Sprintf("%s_%s_linux_%s.cdx.json", controllerName, v, arch)), merged, 0o644); err != nil {
			return err
		}
	}
	logf("SBOMs of the controller image")
	return nil
}

func readJSON(p string) (map[string]any, error) {
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// imageSBOM puts the SBOMs cyclonedx-gomod made of each executable of one
// platform's image under one BOM whose subject is that image (a container
// component named by its OCI purl): each binary becomes a component,
// with the modules it was built from, and the image depends on each.
func imageSBOM(boms []map[string]any, v, arch, digest string) ([]byte, error) {
	if len(boms) == 0 {
		return nil, errors.New("no executable in the image")
	}
	purl := fmt.Sprintf("pkg:oci/%s@%s?arch=%s&repository_url=%s", controllerName, url.QueryEscape(digest), arch, url.QueryEscape(imageRepository))
	image := map[string]any{
		"type": "container", "bom-ref": purl, "name": imageRepository, "version": v, "purl": purl,
		"hashes": []any{map[string]any{"alg": "SHA-256", "content": strings.TrimPrefix(digest, "sha256:")}},
	}
	out := map[string]any{
		"bomFormat": "CycloneDX", "specVersion": boms[0]["specVersion"], "version": 1,
		"metadata": map[string]any{"component": image, "tools": boms[0]["metadata"].(map[string]any)["tools"]},
	}
	seen := map[string]bool{}
	var components, dependencies []any
	var direct []any
	for _, bom := range boms {
		meta, _ := bom["metadata"].(map[string]any)
		main, _ := meta["component"].(map[string]any)
		if main == nil {
			return nil, errors.New("an SBOM without a metadata.component")
		}
		direct = append(direct, main["bom-ref"])
		for _, c := range append([]any{main}, list(bom["components"])...) {
			ref, _ := c.(map[string]any)["bom-ref"].(string)
			if !seen[ref] {
				seen[ref] = true
				components = append(components, c)
			}
		}
		dependencies = append(dependencies, list(bom["dependencies"])...)
	}
	out["components"] = components
	out["dependencies"] = append([]any{map[string]any{"ref": purl, "dependsOn": direct}}, dependencies...)
	return json.MarshalIndent(out, "", "  ")
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}

// extractMember writes one member of a plugin archive into dir, executable.
func extractMember(archive, member, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	files, err := readArchive(archive)
	if err != nil {
		return "", err
	}
	data, ok := files[member]
	if !ok {
		return "", fmt.Errorf("%s has no %s", archive, member)
	}
	out := filepath.Join(dir, member)
	return out, os.WriteFile(out, data.data, 0o755)
}

// extractExecutables writes the image's executable regular files (the
// controller and the credential providers) into dir.
func extractExecutables(img v1.Image, dir string) ([]string, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Mode&0o111 == 0 {
			continue
		}
		p := filepath.Join(dir, path.Base(hdr.Name))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, data, 0o755); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}

// readIndex reads the index of digest from an OCI layout.
func readIndex(dir, digest string) (v1.ImageIndex, *v1.IndexManifest, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, nil, err
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, nil, err
	}
	index, err := idx.ImageIndex(h)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: index %s: %w", dir, digest, err)
	}
	m, err := index.IndexManifest()
	return index, m, err
}

// imagePlatforms lists the platforms of the index with their manifest digests.
func imagePlatforms(dir, digest string) ([]string, error) {
	_, m, err := readIndex(dir, digest)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range m.Manifests {
		out = append(out, fmt.Sprintf("%s  %s", d.Digest, d.Platform))
	}
	return out, nil
}
