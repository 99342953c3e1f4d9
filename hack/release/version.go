package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pullsecrets/pullsecrets/internal/version"
)

// The files that carry the version in the repository, relative to its root:
// `set-version` writes them, TestRepositoryVersionsAgree checks them.
const (
	chartFile         = "charts/pullsecrets/Chart.yaml"
	managerKustomize  = "config/manager/kustomization.yaml"
	imageRepository   = "ghcr.io/pullsecrets/pullsecrets-controller"
	githubRepository  = "pullsecrets/pullsecrets"
	pluginName        = "kubectl-pullsecrets"
	completionName    = "kubectl_complete-pullsecrets"
	controllerName    = "pullsecrets-controller"
	krewTemplate      = "plugins/krew/pullsecrets.yaml"
	completionScript  = "plugins/kubectl_complete-pullsecrets"
	licenseFile       = "LICENSE"
	configDefaultPath = "config/default"
)

// gitState is what the checkout says about the build.
type gitState struct {
	commit string    // full commit
	time   time.Time // commit time: SOURCE_DATE_EPOCH
	tags   []string  // tags pointing at the commit
	dirty  bool      // uncommitted changes
}

func readGit(root string) (gitState, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), nil
	}
	var s gitState
	var err error
	if s.commit, err = git("rev-parse", "HEAD"); err != nil {
		return s, err
	}
	ct, err := git("log", "-1", "--format=%ct")
	if err != nil {
		return s, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return s, fmt.Errorf("commit time %q: %w", ct, err)
	}
	s.time = time.Unix(sec, 0).UTC()
	tags, err := git("tag", "--points-at", "HEAD")
	if err != nil {
		return s, err
	}
	s.tags = strings.Fields(tags)
	status, err := git("status", "--porcelain")
	if err != nil {
		return s, err
	}
	s.dirty = status != ""
	return s, nil
}

// semverRE is Semantic Versioning 2.0.0 without build metadata (a + is
// not allowed in image tags) and without a leading v.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$`)

// releaseVersion decides the version a build reports. repoVersion is the
// chart's appVersion, which `set-version` keeps equal to every other copy.
// A commit tagged v<repoVersion> is that release; any other commit is a
// snapshot after it, named by its commit: 0.2.0-snapshot-1a2b3c4d5e6f (a
// single pre-release identifier, valid whatever the hex digits). A dirty
// tree adds -dirty: its archives can never be mistaken for a commit's.
func releaseVersion(repoVersion string, g gitState) (string, error) {
	if !semverRE.MatchString(repoVersion) {
		return "", fmt.Errorf("%s appVersion %q is not a semantic version X.Y.Z[-pre]", chartFile, repoVersion)
	}
	v := repoVersion
	if !slices.Contains(g.tags, "v"+repoVersion) {
		if len(g.commit) < 12 {
			return "", fmt.Errorf("commit %q: want a full git commit", g.commit)
		}
		v += "-snapshot-" + g.commit[:12]
	}
	if g.dirty {
		v += "-dirty"
	}
	return v, nil
}

// stamp is what -ldflags -X writes into the binaries.
func stamp(v string, g gitState) version.Stamp {
	return version.Stamp{Version: v, Commit: g.commit, Date: g.time.Format(time.RFC3339), Dirty: strconv.FormatBool(g.dirty)}
}

// chartVersions reads the chart's version and appVersion.
func chartVersions(root string) (chartVersion, appVersion string, err error) {
	raw, err := os.ReadFile(filepath.Join(root, chartFile))
	if err != nil {
		return "", "", err
	}
	var c struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(raw, &c); err != nil {
		return "", "", fmt.Errorf("%s: %w", chartFile, err)
	}
	return c.Version, c.AppVersion, nil
}

// kustomizeTag reads the image tag config/manager sets.
func kustomizeTag(root string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, managerKustomize))
	if err != nil {
		return "", err
	}
	var k struct {
		Images []struct {
			Name   string `json:"name"`
			NewTag string `json:"newTag"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		return "", fmt.Errorf("%s: %w", managerKustomize, err)
	}
	for _, i := range k.Images {
		if i.Name == imageRepository {
			return i.NewTag, nil
		}
	}
	return "", fmt.Errorf("%s sets no tag for %s", managerKustomize, imageRepository)
}

// Line rewrites that keep the files' comments and layout.
var (
	chartVersionLine    = regexp.MustCompile(`(?m)^version:.*$`)
	chartAppVersionLine = regexp.MustCompile(`(?m)^appVersion:.*$`)
	kustomizeTagLine    = regexp.MustCompile(`(?m)^(\s+newTag:).*$`)
)

// withChartVersion returns Chart.yaml with version and appVersion set to v.
func withChartVersion(chart []byte, v string) []byte {
	chart = chartVersionLine.ReplaceAll(chart, []byte("version: "+v))
	return chartAppVersionLine.ReplaceAll(chart, []byte(`appVersion: "`+v+`"`))
}

// setVersion writes v into every file of the repository that carries it.
func setVersion(root, v string) error {
	if !semverRE.MatchString(v) {
		return fmt.Errorf("version %q: want X.Y.Z[-pre], without a v", v)
	}
	edit := func(rel string, f func([]byte) []byte) error {
		p := filepath.Join(root, rel)
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, f(raw), 0o644)
	}
	if err := edit(chartFile, func(b []byte) []byte { return withChartVersion(b, v) }); err != nil {
		return err
	}
	return edit(managerKustomize, func(b []byte) []byte {
		return kustomizeTagLine.ReplaceAll(b, []byte(`${1} "`+v+`"`))
	})
}
