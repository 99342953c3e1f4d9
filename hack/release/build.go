package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/version"
)

// platform is one GOOS/GOARCH the plugin is released for.
type platform struct{ os, arch string }

func (p platform) String() string { return p.os + "/" + p.arch }

// pluginPlatforms are the plugin's archives, one each.
var pluginPlatforms = []platform{
	{"darwin", "amd64"}, {"darwin", "arm64"},
	{"linux", "amd64"}, {"linux", "arm64"},
	{"windows", "amd64"}, {"windows", "arm64"},
}

// imageArchitectures are the controller image's platforms (linux).
var imageArchitectures = []string{"amd64", "arm64"}

// exe is the name of a binary on p.
func (p platform) exe(name string) string {
	if p.os == "windows" {
		return name + ".exe"
	}
	return name
}

// archiveName is the plugin archive of version v for p:
// kubectl-pullsecrets_0.2.0_linux_amd64.tar.gz (.zip on Windows).
func archiveName(v string, p platform) string {
	ext := ".tar.gz"
	if p.os == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("%s_%s_%s_%s%s", pluginName, v, p.os, p.arch, ext)
}

// goBuild builds the main package pkg of root for p into out, stamped with
// s: static, no absolute paths, no VCS stamp of the go command's own (the
// stamp says it), no symbol table, no build id. Every variable that changes
// the output is set here rather than inherited, as hack/image does.
func goBuild(ctx context.Context, root, pkg string, p platform, s version.Stamp, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid= "+version.LDFlags(s), "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch,
		"GOAMD64=v1", "GOARM64=v8.0", "GOEXPERIMENT=", "GOFLAGS=-mod=readonly", "GOWORK=off",
	)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s for %s: %w", pkg, p, err)
	}
	return nil
}

// windowsCompletion is kubectl_complete-pullsecrets for Windows, where
// kubectl finds completion helpers through PATHEXT: the same call as the
// shell script.
const windowsCompletion = "@kubectl-pullsecrets.exe __complete %*\r\n"

// pluginArchive builds the plugin for p and packs it with its completion
// helper and the license. It returns the archive's bytes.
func pluginArchive(ctx context.Context, root string, p platform, s version.Stamp, mtime time.Time, work string) ([]byte, error) {
	bin := filepath.Join(work, p.os+"-"+p.arch, p.exe(pluginName))
	if err := goBuild(ctx, root, "./cmd/kubectl-pullsecrets", p, s, bin); err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	license, err := os.ReadFile(filepath.Join(root, licenseFile))
	if err != nil {
		return nil, err
	}
	members := []member{
		{name: p.exe(pluginName), mode: 0o755, data: binary},
		{name: licenseFile, mode: 0o644, data: license},
	}
	if p.os == "windows" {
		members = append(members, member{name: completionName + ".bat", mode: 0o755, data: []byte(windowsCompletion)})
		return zipArchive(members, mtime)
	}
	script, err := os.ReadFile(filepath.Join(root, completionScript))
	if err != nil {
		return nil, err
	}
	members = append(members, member{name: completionName, mode: 0o755, data: script})
	return tarGz(members, mtime)
}
