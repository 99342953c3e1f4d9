package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/version"
)

// credentialProviders builds the credential provider plugins for
// linux/arch (hack/build-credproviders.sh, cached) and returns their folder.
func credentialProviders(ctx context.Context, root, arch string) (string, error) {
	out, err := run(ctx, root, []string{"GOOS=linux", "GOARCH=" + arch}, "bash", filepath.Join(root, "hack", "build-credproviders.sh"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// buildImage builds the controller image for every architecture into
// dist/image (an OCI layout holding one index), with hack/image, and returns
// the index digest.
func buildImage(ctx context.Context, root, dist, v string, g gitState, mtime time.Time) (string, error) {
	var providers []string
	for _, arch := range imageArchitectures {
		logf("credential provider plugins for linux/%s", arch)
		dir, err := credentialProviders(ctx, root, arch)
		if err != nil {
			return "", err
		}
		providers = append(providers, arch+"="+dir)
	}
	logf("controller image for linux/%s", strings.Join(imageArchitectures, ", linux/"))
	out, err := run(ctx, filepath.Join(root, "hack", "image"), nil, "go", "run", ".",
		"--root", root, "--ref", imageRepository+":"+v, "--version", v, "--revision", g.commit,
		"--arch", strings.Join(imageArchitectures, ","), "--credential-providers", strings.Join(providers, ","),
		"--source-date-epoch", strconv.FormatInt(mtime.Unix(), 10), "--layout", filepath.Join(dist, "image"),
		"--go-ldflags", version.LDFlags(stamp(v, g)))
	if err != nil {
		return "", err
	}
	digest := strings.TrimSpace(string(out))
	if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
		return "", fmt.Errorf("hack/image printed %q, not a digest", digest)
	}
	return digest, nil
}
