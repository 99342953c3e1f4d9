// Package files reads manifest files from paths and folders within the
// limits of package readlimit, and writes them back atomically: temporary
// files in the same folders, renamed over the old ones once all are
// written, so that a run's files are replaced whole or not at all.
package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pullsecrets/pullsecrets/internal/manifests"
	"github.com/pullsecrets/pullsecrets/internal/readlimit"
)

// Input is one thing named on a command line: a file, a folder, or "-"
// for stdin.
type Input struct {
	Path string
	// Recursive walks the subfolders of a folder (kubectl's -R); without it
	// only the folder's own files are read, as kubectl -f DIR does.
	Recursive bool
}

// Stdin is the path of the input read from stdin.
const Stdin = "-"

// StdinName is how findings and diffs name stdin.
const StdinName = "<stdin>"

// Result is what ReadInputs found.
type Result struct {
	Files          []manifests.File
	Kustomizations []manifests.Kustomization
	// Errors are inputs that could not be read or understood: bad input.
	Errors []manifests.Finding
	// Notes say what was left out on purpose (a remote kustomize
	// resource) and what is not applied (kustomize's images:).
	Notes []manifests.Finding
}

// Read returns the manifest files under paths, folders walked
// recursively; see ReadInputs.
func Read(paths []string) ([]manifests.File, []manifests.Finding) {
	inputs := make([]Input, len(paths))
	for i, p := range paths {
		inputs[i] = Input{Path: p, Recursive: true}
	}
	res := ReadInputs(inputs, nil)
	return res.Files, res.Errors
}

// ReadInputs returns the manifest files of the inputs: files as given
// (whatever their name), folders' files ending in .yaml, .yml or .json (in
// lexical order, hidden folders such as .git skipped, subfolders only when
// Recursive), and stdin for "-". A folder that holds a kustomization file
// is read as kustomize reads it: the files and folders its resources and
// components list, followed recursively, and its namespace given to their
// objects; the kustomization file itself is never read as a manifest.
// A file named twice is read once. Paths that cannot be read, and files
// over readlimit.MaxFileBytes, are reported; the others are still read.
// When the files together come to more than readlimit.MaxTotalBytes, none
// is read.
func ReadInputs(inputs []Input, stdin io.Reader) *Result {
	return readInputs(inputs, stdin, readlimit.New())
}

// reader collects a run's files.
type reader struct {
	budget            *readlimit.Budget
	found             []found
	seen              map[string]bool
	seenKustomization map[string]bool
	kustomizations    []manifests.Kustomization
	errs, notes       []manifests.Finding
}

func (r *reader) fail(path string, line int, msg string) {
	r.errs = append(r.errs, manifests.Finding{File: path, Line: line, Message: msg})
}

func (r *reader) note(path, msg string) {
	r.notes = append(r.notes, manifests.Finding{File: path, Message: msg})
}

func (r *reader) readError(path string, err error) {
	var tooLarge *readlimit.TooLargeError
	if errors.As(err, &tooLarge) {
		r.fail(path, 0, tooLarge.Problem())
		return
	}
	r.fail(path, 0, "cannot read: "+reason(err))
}

func readInputs(inputs []Input, stdin io.Reader, budget *readlimit.Budget) *Result {
	r := &reader{budget: budget, seen: map[string]bool{}, seenKustomization: map[string]bool{}}
	var stdinData []byte
	readStdin := false
	for _, in := range inputs {
		if in.Path == Stdin {
			if readStdin || stdin == nil {
				continue
			}
			readStdin = true
			data, err := readlimit.ReadStream(StdinName, stdin, min(readlimit.MaxStdinBytes, budget.PerFile))
			if err != nil {
				r.readError(StdinName, err)
				continue
			}
			stdinData = data
			continue
		}
		r.visit(in)
	}
	sizes := make([]int64, len(r.found))
	for i, f := range r.found {
		sizes[i] = f.size
	}
	var paths []string
	for _, in := range inputs {
		paths = append(paths, in.Path)
	}
	// Which files to leave out would be arbitrary: read none.
	var tooLarge *readlimit.TooLargeError
	if errors.As(budget.CheckTotal(paths, sizes), &tooLarge) {
		return &Result{Errors: append(r.errs, manifests.Finding{File: tooLarge.Path, Message: tooLarge.Problem()})}
	}
	res := &Result{}
	if readStdin && stdinData != nil {
		res.Files = append(res.Files, manifests.File{Path: StdinName, Data: stdinData})
	}
	for _, f := range r.found {
		data, err := budget.ReadFile(f.path)
		if err != nil {
			r.readError(f.path, err)
			continue
		}
		res.Files = append(res.Files, manifests.File{Path: f.path, Data: data, Mode: f.mode, Kustomization: f.kustomization, Namespace: f.namespace})
	}
	res.Kustomizations, res.Errors, res.Notes = r.kustomizations, r.errs, r.notes
	return res
}

// found is a file to read, with what Stat said of it and the
// kustomization that lists it.
type found struct {
	path          string
	size          int64
	mode          fs.FileMode
	kustomization string
	namespace     string
}

// add records a file to read, once.
func (r *reader) add(path string, info fs.FileInfo, kustomization, namespace string) {
	abs, err := filepath.Abs(path)
	if err == nil && r.seen[abs] {
		return
	}
	r.seen[abs] = true
	if kustomization == "" {
		kustomization, namespace = r.listedBy(path)
	}
	r.found = append(r.found, found{path: path, size: info.Size(), mode: info.Mode().Perm(), kustomization: kustomization, namespace: namespace})
}

// visit reads one input: a file, a kustomization file, or a folder.
func (r *reader) visit(in Input) {
	info, err := os.Stat(in.Path)
	switch {
	case err != nil:
		r.fail(in.Path, 0, "cannot read: "+reason(err))
	case !info.IsDir() && isKustomizationFile(in.Path):
		r.kustomization(in.Path, "")
	case !info.IsDir():
		r.add(in.Path, info, "", "")
	default:
		r.folder(in.Path, in.Path, in.Recursive)
	}
}

// folder reads a folder: as a kustomization when it holds one, else its
// manifest files and, when recursive, its subfolders'.
func (r *reader) folder(root, dir string, recursive bool) {
	if k := kustomizationIn(dir); k != "" {
		r.kustomization(k, "")
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.fail(dir, 0, "cannot read: "+reason(err))
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if e.IsDir() {
			if recursive && !strings.HasPrefix(e.Name(), ".") {
				r.folder(root, path, recursive)
			}
			continue
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		info, err := os.Stat(path)
		if err != nil {
			r.fail(path, 0, "cannot read: "+reason(err))
			continue
		}
		if info.IsDir() {
			continue // a link to a folder
		}
		r.add(path, info, "", "")
	}
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
