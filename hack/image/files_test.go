package main

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLayerTarIgnoresEntryOrder(t *testing.T) {
	entries := []entry{
		dir("etc", 0o755, 0, 0),
		file("etc/passwd", 0o644, []byte("root:x:0:0::/:/sbin/nologin\n")),
		file("b", 0o755, []byte("b")),
		file("a", 0o755, []byte("a")),
	}
	reversed := []entry{entries[3], entries[2], entries[1], entries[0]}
	mtime := time.Unix(0, 0)
	x, err := layerTar(entries, mtime)
	if err != nil {
		t.Fatal(err)
	}
	y, err := layerTar(reversed, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Error("the same entries in another order give another tar")
	}
	z, err := layerTar(entries, mtime.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(x, z) {
		t.Error("the mtime is not in the tar")
	}

	if _, err := layerTar(append(entries, file("a", 0o644, nil)), mtime); err == nil {
		t.Error("a duplicate entry was accepted")
	}
}

func TestCABundle(t *testing.T) {
	pem, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	again, err := caBundle()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pem, again) {
		t.Error("two CA bundles differ")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate parsed")
	}
	if n := strings.Count(string(pem), "BEGIN CERTIFICATE"); n < 100 {
		t.Errorf("%d roots, want the whole NSS store", n)
	}
}

func TestProviderEntriesRefuses(t *testing.T) {
	sub := t.TempDir()
	if err := os.Mkdir(filepath.Join(sub, "nested"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := t.TempDir()
	if err := os.WriteFile(filepath.Join(script, "provider.sh"), []byte("#!/bin/sh\necho {}\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		dir, want string
	}{
		"missing folder": {filepath.Join(t.TempDir(), "nope"), "no such file"},
		"empty folder":   {t.TempDir(), "is empty"},
		"subfolder":      {sub, "not a regular file"},
		"shell script":   {script, "not an ELF"},
	}
	// The build machine's own tools are dynamically linked against its libc.
	if _, err := os.Stat("/bin/ls"); err == nil {
		dynamic := t.TempDir()
		data, err := os.ReadFile("/bin/ls")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dynamic, "ls"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		cases["dynamic binary"] = struct{ dir, want string }{dynamic, "dynamically linked"}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := providerEntries(tc.dir, runtime.GOARCH)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}
