// Package files reads manifest files from paths and folders within the
// limits of package readlimit, and writes them back atomically: a temporary
// file in the same folder, renamed over the old one, so a file is replaced
// whole or not at all.
package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pullsecrets/pullsecrets/internal/manifests"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// Read returns the manifest files under paths: files as given, and in
// folders (recursively, in lexical order) those ending in .yaml, .yml or
// .json, skipping hidden folders such as .git. A file named twice is read
// once. Paths that cannot be read, and files over readlimit.MaxFileBytes,
// are reported; the others are still read. When the files together come to
// more than readlimit.MaxTotalBytes, none is read.
func Read(paths []string) ([]manifests.File, []manifests.Finding) {
	return read(paths, readlimit.New())
}

func read(paths []string, budget *readlimit.Budget) ([]manifests.File, []manifests.Finding) {
	found, errs := list(paths)
	sizes := make([]int64, len(found))
	for i, f := range found {
		sizes[i] = f.size
	}
	// Which files to leave out would be arbitrary: read none.
	var tooLarge *readlimit.TooLargeError
	if errors.As(budget.CheckTotal(paths, sizes), &tooLarge) {
		return nil, append(errs, manifests.Finding{File: tooLarge.Path, Message: tooLarge.Problem()})
	}
	var out []manifests.File
	for _, f := range found {
		data, err := budget.ReadFile(f.path)
		switch {
		case errors.As(err, &tooLarge):
			errs = append(errs, manifests.Finding{File: f.path, Message: tooLarge.Problem()})
		case err != nil:
			errs = append(errs, manifests.Finding{File: f.path, Message: "cannot read: " + reason(err)})
		default:
			out = append(out, manifests.File{Path: f.path, Data: data, Mode: f.mode})
		}
	}
	return out, errs
}

// found is a file to read, with what Stat said of it.
type found struct {
	path string
	size int64
	mode fs.FileMode
}

// list finds the files under paths, in order, each once.
func list(paths []string) ([]found, []manifests.Finding) {
	var out []found
	var errs []manifests.Finding
	seen := map[string]bool{}
	add := func(path string) {
		abs, err := filepath.Abs(path)
		if err == nil && seen[abs] {
			return
		}
		seen[abs] = true
		info, err := os.Stat(path)
		if err != nil {
			errs = append(errs, manifests.Finding{File: path, Message: "cannot read: " + reason(err)})
			return
		}
		out = append(out, found{path: path, size: info.Size(), mode: info.Mode().Perm()})
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			errs = append(errs, manifests.Finding{File: root, Message: "cannot read: " + reason(err)})
			continue
		}
		if !info.IsDir() {
			add(root)
			continue
		}
		err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, manifests.Finding{File: path, Message: "cannot read: " + reason(err)})
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return fs.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				add(path)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, manifests.Finding{File: root, Message: "cannot read: " + reason(err)})
		}
	}
	return out, errs
}

// reason returns the cause of a path error without repeating the path.
func reason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Exists reports whether anything exists at path.
func Exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Write applies a change: it writes the new bytes to a temporary file in the
// target's folder, with the target's mode, syncs it, and renames it over the
// target (the file a symlink points to, so the link stays a link). A
// created file never replaces an existing one.
func Write(c manifests.Change) error {
	target := c.Path
	if !c.Created {
		resolved, err := filepath.EvalSymlinks(c.Path)
		if err != nil {
			return fmt.Errorf("write %s: %s", c.Path, reason(err))
		}
		target = resolved
	}
	mode := c.Mode.Perm()
	if mode == 0 {
		mode = 0o644
	}
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmp.Name()) // best effort: the target is untouched
		}
	}()
	if _, err := tmp.Write(c.After); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	if c.Created {
		// A hard link fails when the target exists, where a rename would
		// replace it.
		if err := os.Link(tmp.Name(), target); err != nil {
			return fmt.Errorf("create %s: %s", c.Path, reason(err))
		}
		return nil
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("write %s: %s", c.Path, reason(err))
	}
	done = true
	return nil
}
