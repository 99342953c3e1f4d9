package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// tool returns the path of a pinned tool that `make tools` builds into bin/.
func tool(root, name string) (string, error) {
	p := filepath.Join(root, "bin", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("bin/%s is missing: run `make tools`", name)
	}
	return p, nil
}

// run runs a command, returning its stdout; its stderr goes into the error.
func run(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// helmLint lints a packaged chart with the pinned helm, strictly.
func helmLint(ctx context.Context, root, chart string) error {
	helm, err := tool(root, "helm")
	if err != nil {
		return err
	}
	_, err = run(ctx, root, nil, helm, "lint", "--strict", chart)
	return err
}

// helmTemplate renders a packaged chart with the pinned helm.
func helmTemplate(ctx context.Context, root, chart, namespace string, args ...string) ([]byte, error) {
	helm, err := tool(root, "helm")
	if err != nil {
		return nil, err
	}
	return run(ctx, root, nil, helm, append([]string{"template", "pullsecrets", chart, "--namespace", namespace, "--include-crds"}, args...)...)
}

// validateKrewManifest runs krew's own validate-krew-manifest on a manifest:
// its structural validation, every platform selector matching a platform
// krew knows, no two matching the same. (Its install step downloads from
// the uri; krewInstall installs from the local archives instead.)
func validateKrewManifest(ctx context.Context, root, manifest string) error {
	v, err := tool(root, "validate-krew-manifest")
	if err != nil {
		return err
	}
	_, err = run(ctx, root, nil, v, "-manifest", manifest, "-skip-install")
	return err
}

// krewInstall installs the plugin from manifest and a local archive as
// `kubectl krew install --manifest --archive` does, for p, into a fresh
// krew root, and returns the path of the installed plugin binary (krew's
// bin/ link). Krew checks the archive's sha256 against the manifest's,
// unpacks it, moves the files the manifest names and links its bin.
func krewInstall(ctx context.Context, root, manifest, archive string, p platform, krewRoot string) (string, error) {
	krew, err := tool(root, "krew")
	if err != nil {
		return "", err
	}
	env := []string{"KREW_ROOT=" + krewRoot, "KREW_OS=" + p.os, "KREW_ARCH=" + p.arch, "KREW_NO_UPGRADE_CHECK=1"}
	if _, err := run(ctx, root, env, krew, "install", "--manifest="+manifest, "--archive="+archive); err != nil {
		return "", fmt.Errorf("krew install for %s: %w", p, err)
	}
	return filepath.Join(krewRoot, "bin", p.exe("kubectl-pullsecrets")), nil
}
