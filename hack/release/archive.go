package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"time"
)

// member is one file of an archive. Its mode and content are all that is
// kept: owner, group and time are fixed by the writer, so the build
// machine's file system never reaches the archive.
type member struct {
	name string // slash-separated, relative
	mode fs.FileMode
	data []byte
}

// sortedMembers returns the members by name, refusing duplicates.
func sortedMembers(members []member) ([]member, error) {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b member) int { return cmp.Compare(a.name, b.name) })
	for i := 1; i < len(members); i++ {
		if members[i].name == members[i-1].name {
			return nil, fmt.Errorf("duplicate archive member %s", members[i].name)
		}
	}
	return members, nil
}

// tarGz writes members as a gzip-compressed tar: sorted by name, owned by
// 0:0 with no user or group names, every time mtime, PAX format, and a
// gzip header with no name and no time. The same members give the same
// bytes on any machine with the same Go release.
func tarGz(members []member, mtime time.Time) ([]byte, error) {
	members, err := sortedMembers(members)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, m := range members {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     m.name,
			Mode:     int64(m.mode.Perm()),
			Size:     int64(len(m.data)),
			ModTime:  mtime,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", m.name, err)
		}
		if _, err := tw.Write(m.data); err != nil {
			return nil, fmt.Errorf("tar %s: %w", m.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// zipArchive writes members as a zip (for Windows), with the same rules as
// tarGz: sorted, fixed times, deflate at a fixed level.
func zipArchive(members []member, mtime time.Time) ([]byte, error) {
	members, err := sortedMembers(members)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, m := range members {
		hdr := &zip.FileHeader{Name: m.name, Method: zip.Deflate, Modified: mtime.UTC()}
		hdr.SetMode(m.mode.Perm())
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("zip header %s: %w", m.name, err)
		}
		if _, err := w.Write(m.data); err != nil {
			return nil, fmt.Errorf("zip %s: %w", m.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
