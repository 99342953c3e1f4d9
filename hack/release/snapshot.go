package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/version"
)

// checkoutVersion is the version of the checkout at root, after checking
// that every copy of it in the repository agrees.
func checkoutVersion(root string) (string, gitState, error) {
	g, err := readGit(root)
	if err != nil {
		return "", g, err
	}
	if err := repositoryVersionsAgree(root); err != nil {
		return "", g, err
	}
	_, appVersion, err := chartVersions(root)
	if err != nil {
		return "", g, err
	}
	for _, t := range g.tags {
		if strings.HasPrefix(t, "v") && semverRE.MatchString(t[1:]) && t != "v"+appVersion {
			return "", g, fmt.Errorf("the commit is tagged %s but %s says %s: run `make set-version VERSION=%s`, commit, and tag that", t, chartFile, appVersion, t[1:])
		}
	}
	v, err := releaseVersion(appVersion, g)
	return v, g, err
}

// repositoryVersionsAgree fails unless the chart's version and appVersion
// and config/manager's image tag are the same version.
func repositoryVersionsAgree(root string) error {
	chartVersion, appVersion, err := chartVersions(root)
	if err != nil {
		return err
	}
	tag, err := kustomizeTag(root)
	if err != nil {
		return err
	}
	if chartVersion != appVersion || tag != appVersion {
		return fmt.Errorf("versions disagree: %s version %q, appVersion %q; %s newTag %q: run `make set-version VERSION=X.Y.Z`",
			chartFile, chartVersion, appVersion, managerKustomize, tag)
	}
	return nil
}

func ldflagsOf(s version.Stamp) string { return version.LDFlags(s) }

// sourceDateEpoch is every timestamp of the release: SOURCE_DATE_EPOCH when
// set, else the commit's time.
func sourceDateEpoch(g gitState) (time.Time, error) {
	if e := os.Getenv("SOURCE_DATE_EPOCH"); e != "" {
		sec, err := strconv.ParseInt(e, 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", e)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	return g.time, nil
}

// sha256Hex is the hex sha256 of data.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// snapshot builds into dist everything a release of this checkout
// publishes, checks it, and prints every artifact with its digest.
func snapshot(ctx context.Context, root, dist string, withImage bool) error {
	v, g, err := checkoutVersion(root)
	if err != nil {
		return err
	}
	mtime, err := sourceDateEpoch(g)
	if err != nil {
		return err
	}
	s := stamp(v, g)
	logf("pullsecrets %s (commit %s, SOURCE_DATE_EPOCH %d)", v, g.commit, mtime.Unix())
	if err := os.RemoveAll(dist); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pullsecrets-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	write := func(rel string, data []byte) error {
		p := filepath.Join(dist, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data, 0o644)
	}

	// The plugin: one archive per platform.
	archives := map[string]string{}
	for _, p := range pluginPlatforms {
		logf("plugin archive for %s", p)
		data, err := pluginArchive(ctx, root, p, s, mtime, work)
		if err != nil {
			return err
		}
		name := archiveName(v, p)
		if err := write(name, data); err != nil {
			return err
		}
		archives[name] = sha256Hex(data)
	}

	// The krew manifest from those archives, checked by krew itself, and
	// installed from each local archive as krew would for that platform.
	manifest, err := krewManifest(root, v, archives)
	if err != nil {
		return err
	}
	manifestPath := filepath.Join(dist, "krew", "pullsecrets.yaml")
	if err := write("krew/pullsecrets.yaml", manifest); err != nil {
		return err
	}
	logf("validate-krew-manifest (krew %s)", "v0.4.3")
	if err := validateKrewManifest(ctx, root, manifestPath); err != nil {
		return err
	}
	for _, p := range pluginPlatforms {
		if _, err := krewInstall(ctx, root, manifestPath, filepath.Join(dist, archiveName(v, p)), p, filepath.Join(work, "krew-"+p.os+"-"+p.arch)); err != nil {
			return err
		}
	}
	logf("krew installs every platform from its local archive")

	// The controller image, one OCI index for every architecture.
	digest := "sha256:" + strings.Repeat("0", 64)
	if withImage {
		if digest, err = buildImage(ctx, root, dist, v, g, mtime); err != nil {
			return err
		}
		if err := write("image-digest.txt", []byte(digest+"\n")); err != nil {
			return err
		}
	}

	// The chart, at the release version, linted and rendered with the image digest.
	chart, err := packageChart(root, v, mtime)
	if err != nil {
		return err
	}
	chartPath := filepath.Join(dist, chartArchiveName(v))
	if err := write(chartArchiveName(v), chart); err != nil {
		return err
	}
	if err := helmLint(ctx, root, chartPath); err != nil {
		return err
	}
	rendered, err := helmTemplate(ctx, root, chartPath, "pullsecrets-system", "--set", "image.digest="+digest)
	if err != nil {
		return err
	}
	if !bytes.Contains(rendered, []byte(imageRepository+"@"+digest)) {
		return fmt.Errorf("the chart rendered with image.digest=%s does not run that image", digest)
	}

	// install.yaml: config/default with the image pinned by digest.
	install, err := installYAML(root, v, digest)
	if err != nil {
		return err
	}
	if err := write("install.yaml", install); err != nil {
		return err
	}

	// SBOMs of every binary, and of the image.
	if err := sboms(ctx, root, dist, v, withImage, digest); err != nil {
		return err
	}

	return writeChecksums(dist, v, digest, withImage)
}

// writeChecksums writes checksums.txt (sha256sum format) over every file of
// dist but the image layout, and prints each with its digest.
func writeChecksums(dist, v, digest string, withImage bool) error {
	var lines []string
	err := filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dist, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if rel == "image" {
				return filepath.SkipDir
			}
			return nil
		}
		if rel == "checksums.txt" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, sha256Hex(data)+"  "+filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(lines, func(a, b string) int { return strings.Compare(a[66:], b[66:]) })
	sums := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dist, "checksums.txt"), []byte(sums), 0o644); err != nil {
		return err
	}
	fmt.Printf("pullsecrets %s in %s:\n", v, dist)
	for _, l := range lines {
		fmt.Printf("  sha256:%s\n", l)
	}
	fmt.Printf("  sha256:%s  checksums.txt\n", sha256Hex([]byte(sums)))
	if withImage {
		fmt.Printf("  %s  image/ (OCI index %s:%s)\n", digest, imageRepository, v)
		platforms, err := imagePlatforms(filepath.Join(dist, "image"), digest)
		if err != nil {
			return err
		}
		for _, l := range platforms {
			fmt.Printf("    %s\n", l)
		}
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}
