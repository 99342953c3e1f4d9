package version

import (
	"math/rand/v2"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

func buildInfo(mainVersion string, settings ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/pullsecrets/pullsecrets", Version: mainVersion}}
	for i := 0; i+1 < len(settings); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
	}
	return bi
}

const rev = "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"

func TestResolve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		stamp Stamp
		bi    *debug.BuildInfo
		want  Info
	}{{
		name:  "stamped by make release-snapshot",
		stamp: Stamp{Version: "0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", Dirty: "false"},
		bi:    buildInfo("(devel)"),
		want:  Info{Version: "0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name:  "a stamp wins over the build information",
		stamp: Stamp{Version: "v0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", Dirty: "false"},
		bi:    buildInfo("v9.9.9", "vcs.revision", "ffff", "vcs.time", "2020-01-01T00:00:00Z", "vcs.modified", "true"),
		want:  Info{Version: "0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name: "go install module@v0.2.0: the module version, no VCS",
		bi:   buildInfo("v0.2.0"),
		want: Info{Version: "0.2.0", GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name: "go install module@commit: a pseudo-version names the commit",
		bi:   buildInfo("v0.1.1-0.20261201100000-1a2b3c4d5e6f"),
		want: Info{Version: "0.1.1-0.20261201100000-1a2b3c4d5e6f", Commit: "1a2b3c4d5e6f", GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name: "go build in a checkout: VCS settings, no version",
		bi:   buildInfo("(devel)", "vcs.revision", rev, "vcs.time", "2026-12-01T11:00:00+01:00", "vcs.modified", "true"),
		want: Info{Version: Unknown, Commit: rev, Date: "2026-12-01T10:00:00Z", Dirty: true, GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name:  "a stamp without a version still gets the module's",
		stamp: Stamp{Commit: rev},
		bi:    buildInfo("v0.3.0"),
		want:  Info{Version: "0.3.0", Commit: rev, GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name:  "stamped dirty=false wins over vcs.modified",
		stamp: Stamp{Version: "0.2.0", Dirty: "false"},
		bi:    buildInfo("(devel)", "vcs.modified", "true"),
		want:  Info{Version: "0.2.0", GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}, {
		name: "unparsable vcs.time is left out",
		bi:   buildInfo("(devel)", "vcs.time", "yesterday"),
		want: Info{Version: Unknown, GoVersion: "go1.26.8", Platform: "linux/amd64"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Resolve(tc.stamp, tc.bi, "linux/amd64"); got != tc.want {
				t.Errorf("Resolve:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestResolveWithoutBuildInfo(t *testing.T) {
	t.Parallel()
	got := Resolve(Stamp{}, nil, "darwin/arm64")
	if got.Version != Unknown || got.GoVersion == "" || got.Platform != "darwin/arm64" || got.Commit != "" {
		t.Errorf("Resolve(nothing) = %+v", got)
	}
}

func TestPseudoCommit(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]string{
		"v0.0.0-20261201100000-1a2b3c4d5e6f":              "1a2b3c4d5e6f",
		"v0.2.1-0.20261201100000-1a2b3c4d5e6f":            "1a2b3c4d5e6f",
		"v0.2.0-rc.1.0.20261201100000-1a2b3c4d5e6f":       "1a2b3c4d5e6f",
		"v2.0.0-20261201100000-1a2b3c4d5e6f+incompatible": "1a2b3c4d5e6f",
		"v0.2.0":                             "",
		"v0.2.0-rc.1":                        "",
		"v0.2.0-snapshot-abcd":               "",
		"v0.0.0-20261301100000-1a2b3c4d5e6f": "", // month 13
		"v0.0.0-20261201100000-1a2b3c4d5e6g": "", // not hex
	} {
		if got := pseudoCommit(v); got != want {
			t.Errorf("pseudoCommit(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		info Info
		want string
	}{
		{Info{Version: "0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", Platform: "linux/amd64"},
			"0.2.0 (commit " + rev + ", 2026-12-01T10:00:00Z, go1.26.8 linux/amd64)"},
		{Info{Version: "0.2.0", Commit: rev, Dirty: true, GoVersion: "go1.26.8", Platform: "linux/amd64"},
			"0.2.0 (commit " + rev + "-dirty, go1.26.8 linux/amd64)"},
		{Info{Version: Unknown, Dirty: true, GoVersion: "go1.26.8", Platform: "linux/amd64"},
			Unknown + " (dirty, go1.26.8 linux/amd64)"},
	} {
		if got := tc.info.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

// Randomized: whatever the build information says, a stamped field is
// reported as stamped; an unstamped one comes from the build information;
// the version never carries a leading v and is never empty.
func TestResolveRandomized(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(21, 21))
	pick := func(options ...string) string { return options[r.IntN(len(options))] }
	for range 2000 {
		s := Stamp{
			Version: pick("", "0.2.0", "v0.2.0", "1.0.0-rc.1"),
			Commit:  pick("", rev),
			Date:    pick("", "2026-12-01T10:00:00Z"),
			Dirty:   pick("", "true", "false"),
		}
		var bi *debug.BuildInfo
		if r.IntN(5) > 0 {
			bi = buildInfo(pick("", "(devel)", "v0.3.0", "v0.0.0-20261201100000-abcdefabcdef"),
				"vcs.revision", pick("", "ffffffff"), "vcs.time", pick("", "2025-01-01T00:00:00Z"), "vcs.modified", pick("", "true", "false"))
		}
		got := Resolve(s, bi, "linux/amd64")
		if got.Version == "" || strings.HasPrefix(got.Version, "v") {
			t.Fatalf("Resolve(%+v, %+v): version %q", s, bi, got.Version)
		}
		if s.Version != "" && got.Version != strings.TrimPrefix(s.Version, "v") {
			t.Fatalf("Resolve(%+v): version %q, want the stamp's", s, got.Version)
		}
		if s.Commit != "" && got.Commit != s.Commit {
			t.Fatalf("Resolve(%+v): commit %q, want the stamp's", s, got.Commit)
		}
		if s.Date != "" && got.Date != s.Date {
			t.Fatalf("Resolve(%+v): date %q, want the stamp's", s, got.Date)
		}
		if s.Dirty != "" {
			if want, _ := strconv.ParseBool(s.Dirty); got.Dirty != want {
				t.Fatalf("Resolve(%+v): dirty %v, want the stamp's", s, got.Dirty)
			}
		}
		if bi == nil && s.Commit == "" && got.Commit != "" {
			t.Fatalf("Resolve(%+v, nil): commit %q from nowhere", s, got.Commit)
		}
	}
}

func TestLDFlags(t *testing.T) {
	t.Parallel()
	got := LDFlags(Stamp{Version: "0.2.0", Commit: rev, Date: "2026-12-01T10:00:00Z", Dirty: "false"})
	for _, want := range []string{
		"-X github.com/pullsecrets/pullsecrets/internal/version.version=0.2.0",
		"-X github.com/pullsecrets/pullsecrets/internal/version.commit=" + rev,
		"-X github.com/pullsecrets/pullsecrets/internal/version.date=2026-12-01T10:00:00Z",
		"-X github.com/pullsecrets/pullsecrets/internal/version.dirty=false",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("LDFlags() = %q, lacks %q", got, want)
		}
	}
}
