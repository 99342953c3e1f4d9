// Package version is the one version of pullsecrets that every binary
// reports: stamped at build time with -ldflags -X (make build, make
// release-snapshot: hack/release), or read from the Go build information of a
// `go install` build. It is pure apart from Get, which reads the process's.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Stamped at build time with
//
//	-ldflags "-X github.com/pullsecrets/pullsecrets/internal/version.version=0.2.0 ..."
//
// (hack/release prints the flags: go run ./hack/release ldflags). Strings
// only: -X sets nothing else. Empty means "not stamped".
var (
	version string // semantic version, without a leading v: 0.2.0, 0.2.0-snapshot-1a2b3c4d5e6f
	commit  string // full git commit
	date    string // commit time, RFC 3339 UTC: the same for every build of a commit
	dirty   string // "true" when built from a tree with uncommitted changes
)

// Unknown is the version of a build that was neither stamped nor built from
// a module version (go build in a checkout without VCS information).
const Unknown = "0.0.0-unknown"

// Info is what a binary says about its build. The JSON form is the contract
// of `kubectl pullsecrets version -o json`.
type Info struct {
	// Version is the semantic version without a leading v, as the Helm
	// chart and the image tag carry it.
	Version string `json:"version"`
	// Commit is the git commit, empty when unknown.
	Commit string `json:"commit,omitempty"`
	// Date is the commit's time (RFC 3339, UTC), empty when unknown.
	Date string `json:"date,omitempty"`
	// Dirty is true when the tree had uncommitted changes.
	Dirty bool `json:"dirty"`
	// GoVersion is the Go release that built the binary.
	GoVersion string `json:"goVersion"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// String is the one-line form, for --version and logs:
// "0.2.0 (commit 1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d, 2026-12-01T10:00:00Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	var parts []string
	if i.Commit != "" {
		c := i.Commit
		if i.Dirty {
			c += "-dirty"
		}
		parts = append(parts, "commit "+c)
	} else if i.Dirty {
		parts = append(parts, "dirty")
	}
	if i.Date != "" {
		parts = append(parts, i.Date)
	}
	parts = append(parts, strings.TrimSpace(i.GoVersion+" "+i.Platform))
	return i.Version + " (" + strings.Join(parts, ", ") + ")"
}

// Stamp is what -ldflags -X set.
type Stamp struct {
	Version, Commit, Date, Dirty string
}

// Get returns this binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return Resolve(Stamp{Version: version, Commit: commit, Date: date, Dirty: dirty}, bi, runtime.GOOS+"/"+runtime.GOARCH)
}

// Resolve decides the Info from the stamp and the build information (nil
// when the binary has none). A stamped field wins; a missing one is taken
// from the build information: the module version of a `go install
// module@version` build, and the vcs.* settings the go command records when
// it builds in a git checkout (unless -buildvcs=false).
func Resolve(s Stamp, bi *debug.BuildInfo, platform string) Info {
	info := Info{
		Version:  strings.TrimPrefix(s.Version, "v"),
		Commit:   s.Commit,
		Date:     s.Date,
		Platform: platform,
	}
	info.Dirty, _ = strconv.ParseBool(s.Dirty)
	if bi != nil {
		info.GoVersion = bi.GoVersion
		settings := map[string]string{}
		for _, kv := range bi.Settings {
			settings[kv.Key] = kv.Value
		}
		if info.Commit == "" {
			info.Commit = settings["vcs.revision"]
		}
		if info.Date == "" {
			info.Date = normalizeDate(settings["vcs.time"])
		}
		if s.Dirty == "" {
			info.Dirty = settings["vcs.modified"] == "true"
		}
		if info.Version == "" {
			info.Version = moduleVersion(bi.Main.Version)
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" && info.Commit == "" {
			// A pseudo-version names its commit: v0.0.0-20261201100000-1a2b3c4d5e6f.
			if c := pseudoCommit(bi.Main.Version); c != "" {
				info.Commit = c
			}
		}
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	return info
}

// moduleVersion is the version of a module build without its v, or "" for a
// build of a checkout ("(devel)") or none.
func moduleVersion(v string) string {
	if v == "" || v == "(devel)" {
		return ""
	}
	return strings.TrimSuffix(strings.TrimPrefix(v, "v"), "+incompatible")
}

// pseudoCommit returns the 12-hex commit prefix of a Go pseudo-version, or "".
func pseudoCommit(v string) string {
	v = strings.TrimSuffix(v, "+incompatible")
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return ""
	}
	rev := v[i+1:]
	before := v[:i]
	j := strings.LastIndexAny(before, "-.")
	if len(rev) != 12 || j < 0 || len(before)-j-1 != 14 {
		return ""
	}
	if _, err := time.Parse("20060102150405", before[j+1:]); err != nil {
		return ""
	}
	for _, r := range rev {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return ""
		}
	}
	return rev
}

// normalizeDate turns a vcs.time into RFC 3339 UTC, or "" when unparsable.
func normalizeDate(s string) string {
	if s == "" {
		return ""
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// LDFlags returns the -ldflags -X arguments that stamp s into a binary.
func LDFlags(s Stamp) string {
	const pkg = "github.com/pullsecrets/pullsecrets/internal/version"
	return fmt.Sprintf("-X %s.version=%s -X %s.commit=%s -X %s.date=%s -X %s.dirty=%s",
		pkg, s.Version, pkg, s.Commit, pkg, s.Date, pkg, s.Dirty)
}
