// Package files reads manifest files from paths and folders within the
// limits of package readlimit, and writes them back atomically: temporary
// files in the same folders, renamed over the old ones once all are
// written, so that a run's files are replaced whole or not at all.
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

// Write applies one change; see WriteAll.
func Write(c manifests.Change) error {
	_, err := WriteAll([]manifests.Change{c})
	return err
}

// WriteAll applies changes all or none. Each new text first goes to a
// temporary file in its target's folder, with the target's mode, synced;
// then created files are linked into place (a hard link never replaces a
// file that appeared meanwhile); only then are the temporary files renamed
// over the edited files (through a symlink, to its target, so the link
// stays a link). A failure before the renames removes what was made, and
// nothing is written. It returns the paths written, in order.
func WriteAll(changes []manifests.Change) ([]string, error) {
	var all []*staged
	defer func() {
		for _, st := range all {
			st.discard()
		}
	}()
	for _, c := range changes {
		st, err := stage(c)
		if err != nil {
			return nil, err
		}
		all = append(all, st)
	}
	var linked []string
	unlink := func() {
		for _, p := range linked {
			_ = os.Remove(p) // ours: linked a moment ago
		}
	}
	for _, st := range all {
		if !st.c.Created {
			continue
		}
		if err := os.Link(st.tmp, st.target); err != nil {
			unlink()
			return nil, fmt.Errorf("create %s: %s; nothing was written", st.c.Path, reason(err))
		}
		linked = append(linked, st.target)
	}
	var renamed []string
	for _, st := range all {
		if st.c.Created {
			continue
		}
		if err := os.Rename(st.tmp, st.target); err != nil {
			if len(renamed) == 0 {
				unlink()
				return nil, fmt.Errorf("write %s: %s; nothing was written", st.c.Path, reason(err))
			}
			// Rare: the folder changed under us between two renames.
			return append(linked, renamed...), fmt.Errorf("write %s: %s; already written: %s", st.c.Path, reason(err), strings.Join(append(linked, renamed...), ", "))
		}
		st.tmp = ""
		renamed = append(renamed, st.c.Path)
	}
	var written []string
	for _, st := range all {
		written = append(written, st.c.Path)
	}
	return written, nil
}

// staged is a change whose new text waits in a temporary file.
type staged struct {
	c      manifests.Change
	target string
	tmp    string // "" once renamed into place
}

// stage writes the change's new text to a temporary file beside its
// target.
func stage(c manifests.Change) (*staged, error) {
	target := c.Path
	if !c.Created {
		resolved, err := filepath.EvalSymlinks(c.Path)
		if err != nil {
			return nil, fmt.Errorf("write %s: %s; nothing was written", c.Path, reason(err))
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
	fail := func(err error) (*staged, error) {
		return nil, fmt.Errorf("write %s: %s; nothing was written", c.Path, reason(err))
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fail(err)
	}
	st := &staged{c: c, target: target, tmp: tmp.Name()}
	for _, step := range []func() error{
		func() error { _, err := tmp.Write(c.After); return err },
		func() error { return tmp.Chmod(mode) },
		tmp.Sync,
	} {
		if err := step(); err != nil {
			_ = tmp.Close()
			st.discard()
			return fail(err)
		}
	}
	if err := tmp.Close(); err != nil {
		st.discard()
		return fail(err)
	}
	return st, nil
}

// discard removes the temporary file, if it is still there.
func (st *staged) discard() {
	if st.tmp != "" {
		_ = os.Remove(st.tmp) // best effort: the target is untouched
		st.tmp = ""
	}
}
