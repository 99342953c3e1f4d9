package main

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// installYAML renders config/default, as `kubectl apply -k` would, with the
// controller image pinned by digest (and tagged v, which `kubectl
// pullsecrets version` reads): one file to `kubectl apply -f`.
func installYAML(root, v, digest string) ([]byte, error) {
	overlay, err := os.MkdirTemp("", "pullsecrets-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	base, err := filepath.Rel(overlay, filepath.Join(root, configDefaultPath))
	if err != nil {
		return nil, err
	}
	k := fmt.Sprintf("resources:\n  - %s\nimages:\n  - name: %s\n    newTag: %q\n    digest: %s\n", filepath.ToSlash(base), imageRepository, v, digest)
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		return nil, err
	}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone // the overlay lives in a temporary folder
	res, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), overlay)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", configDefaultPath, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# pullsecrets %s: kubectl apply --server-side -f install.yaml\n# Rendered from config/default; the controller image is pinned by digest.\n", v)
	return append([]byte(header), out...), nil
}
