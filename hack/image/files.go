package main

import (
	"archive/tar"
	"bytes"
	"cmp"
	"crypto/x509"
	"debug/elf"
	"encoding/pem"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// The non-root user the controller runs as, the same ids as distroless's
// "nonroot" so that existing securityContexts keep working.
const (
	nonrootUID = 65532
	nonrootGID = 65532
)

// entry is one file or folder of a layer. Owner and mode are given
// explicitly: nothing is taken from the build machine's file system.
type entry struct {
	name     string // relative to /, no leading slash
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// layerTar writes entries as an uncompressed tar with every timestamp set to
// mtime, sorted by name, with numeric owners only: the same entries give the
// same bytes on any machine.
func layerTar(entries []entry, mtime time.Time) ([]byte, error) {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, e := range entries {
		if i > 0 && entries[i-1].name == e.name {
			return nil, fmt.Errorf("duplicate entry %s", e.name)
		}
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		} else {
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func dir(name string, mode int64, uid, gid int) entry {
	return entry{name: name, dir: true, mode: mode, uid: uid, gid: gid}
}

func file(name string, mode int64, data []byte) entry {
	return entry{name: name, mode: mode, data: data}
}

// baseEntries is what distroless/static:nonroot gives a static binary:
// users and groups, name service order, CA certificates, /tmp and the
// nonroot home. No shell, no package manager, no libc.
func baseEntries() ([]entry, error) {
	certs, err := caBundle()
	if err != nil {
		return nil, err
	}
	return []entry{
		dir("etc", 0o755, 0, 0),
		file("etc/passwd", 0o644, []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n"+
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"+
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
		file("etc/group", 0o644, []byte(
			"root:x:0:\n"+
				"nobody:x:65534:\n"+
				"nonroot:x:65532:\n")),
		file("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\n")),
		dir("etc/ssl", 0o755, 0, 0),
		dir("etc/ssl/certs", 0o755, 0, 0),
		file("etc/ssl/certs/ca-certificates.crt", 0o644, certs),
		dir("home", 0o755, 0, 0),
		dir("home/nonroot", 0o700, nonrootUID, nonrootGID),
		dir("tmp", 0o1777, 0, 0),
	}, nil
}

// caBundle is the Mozilla (NSS) root store as vendored by
// golang.org/x/crypto/x509roots/fallback, pinned by go.sum: the same bundle
// on every build machine, refreshed by bumping that module. Roots with a
// distrust-after constraint are left out, since a PEM file cannot carry it.
func caBundle() ([]byte, error) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		cert, err := x509.ParseCertificate(root.Certificate)
		if err != nil {
			return nil, fmt.Errorf("parse root certificate %d: %w", n, err)
		}
		fmt.Fprintf(&buf, "# %s\n", cert.Subject)
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate}); err != nil {
			return nil, err
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("the x509roots bundle has no unconstrained root")
	}
	return buf.Bytes(), nil
}

// providerEntries reads every file of dir into /credential-providers/,
// mode 0755, owned by root. Each must be a static ELF executable for arch:
// the image has no libc or loader to run anything else.
func providerEntries(dir string, arch string) ([]entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read credential providers: %w", err)
	}
	entries := []entry{{name: "credential-providers", dir: true, mode: 0o755}}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("credential provider %s is not a regular file", p)
		}
		if err := checkStaticELF(p, arch); err != nil {
			return nil, fmt.Errorf("credential provider %s: %w", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		entries = append(entries, file(path.Join("credential-providers", de.Name()), 0o755, data))
	}
	if len(entries) == 1 {
		return nil, fmt.Errorf("credential providers folder %s is empty", dir)
	}
	return entries, nil
}

var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// checkStaticELF fails unless p is an ELF executable for arch with no
// program interpreter (PT_INTERP) and no shared library (DT_NEEDED).
func checkStaticELF(p, arch string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	if want, ok := elfMachine[arch]; !ok || f.Machine != want {
		return fmt.Errorf("built for %s, not %s", f.Machine, arch)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("dynamically linked (has a PT_INTERP program header)")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("read dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	return nil
}
