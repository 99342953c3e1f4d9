// Package readlimit reads a command's input files within limits, one per
// file and one for all the files of a run, so that no input makes a command
// read, parse or hold without bound.
package readlimit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// The limits of the files one command reads: `manifests scan|migrate|rename`
// and `match --secret-file`. Parsing YAML takes about 35 bytes of memory per
// byte of input, so a run at the total limit holds about 2.5 GB.
const (
	// MaxFileBytes is the largest file a command reads: 8 MiB. The API
	// server refuses an object over 3 MiB; rendered charts and CRD bundles
	// stay well under this.
	MaxFileBytes int64 = 8 << 20
	// MaxTotalBytes is the most a command reads from all its files: 64 MiB.
	MaxTotalBytes int64 = 64 << 20
	// MaxSecretBytes is the most a command reads for what goes into one
	// Secret, or checks one: `create --from-docker-config`, the password of
	// `--docker-password-stdin`, and `--registry-ca-file`. 1 MiB is the
	// most a Secret holds (the API server refuses more).
	MaxSecretBytes int64 = 1 << 20
	// MaxStdinBytes is the most `manifests ... -` reads from stdin: one
	// file's limit.
	MaxStdinBytes = MaxFileBytes
)

// secretLimitWhy explains MaxSecretBytes in messages.
const secretLimitWhy = "(a Secret holds at most 1 MiB)"

// TooLargeError says that a file, or a run's files together, are over a
// limit. It never holds the files' content.
type TooLargeError struct {
	// Path is the file refused.
	Path string
	// Size is its size; when AtLeast, only a lower bound: the bytes read
	// before the limit stopped the read (a pipe, a device, a growing file).
	Size    int64
	AtLeast bool
	// Limit is the limit it is over.
	Limit int64
	// Total is true when the limit is the run's, which the files read
	// before it and Path would exceed together.
	Total bool
	// Files is set, with Size their sum, when the run's files were
	// refused together, before any was read (CheckTotal).
	Files int
	// Why, when set, follows the limit in Problem instead of "for one
	// file": "(a Secret holds at most 1 MiB)".
	Why string
}

func (e *TooLargeError) Error() string { return e.Path + ": " + e.Problem() }

// Problem is the error without the path, for reports that give the path
// apart.
func (e *TooLargeError) Problem() string {
	if e.Files > 0 {
		return fmt.Sprintf("not read: the %d files come to %s, more than %s, the limit for all the files of one command; name fewer files or folders", e.Files, MiB(e.Size), MiB(e.Limit))
	}
	if e.Total {
		return fmt.Sprintf("not read: with it the files come to more than %s, the limit for all the files of one command", MiB(e.Limit))
	}
	why := "for one file"
	if e.Why != "" {
		why = e.Why
	}
	if e.AtLeast {
		return fmt.Sprintf("not read: it holds more than the %s limit %s", MiB(e.Limit), why)
	}
	return fmt.Sprintf("not read: it is %s, over the %s limit %s", MiB(e.Size), MiB(e.Limit), why)
}

// MiB writes a size in MiB, rounded up to one decimal when it is not whole,
// so that a size over a limit never reads as the limit.
func MiB(n int64) string {
	const mib = 1 << 20
	if n%mib == 0 {
		return fmt.Sprintf("%d MiB", n/mib)
	}
	tenths := (n*10 + mib - 1) / mib
	return fmt.Sprintf("%d.%d MiB", tenths/10, tenths%10)
}

// Budget reads files while their sizes stay within its limits. The zero
// value has no budget left: use New.
type Budget struct {
	// PerFile and Total are the limits.
	PerFile, Total int64
	used           int64
}

// New returns a Budget with the default limits.
func New() *Budget { return &Budget{PerFile: MaxFileBytes, Total: MaxTotalBytes} }

// Check returns a *TooLargeError when a file of size bytes would be over a
// limit, without counting it.
func (b *Budget) Check(path string, size int64) error {
	switch {
	case size > b.PerFile:
		return &TooLargeError{Path: path, Size: size, Limit: b.PerFile}
	case b.used+size > b.Total:
		return &TooLargeError{Path: path, Size: size, Limit: b.Total, Total: true}
	}
	return nil
}

// CheckTotal returns a *TooLargeError when files of these sizes (those
// within the per-file limit, the others are refused alone) would exceed the
// total limit together: a run that would stop part way is refused before it
// reads anything.
func (b *Budget) CheckTotal(paths []string, sizes []int64) error {
	var total int64
	for _, size := range sizes {
		if size <= b.PerFile {
			total += size
		}
	}
	if b.used+total <= b.Total {
		return nil
	}
	return &TooLargeError{Path: strings.Join(paths, " "), Size: total, Limit: b.Total, Total: true, Files: len(sizes)}
}

// ReadFile reads a whole file and counts it, or returns a *TooLargeError
// and reads no more than the limit and a byte: a regular file's size is
// checked before reading, other files (a pipe, a device) as they are read.
func (b *Budget) ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("is a directory")}
	}
	if info.Mode().IsRegular() {
		if err := b.Check(path, info.Size()); err != nil {
			return nil, err
		}
	}
	room := min(b.PerFile, b.Total-b.used)
	data, err := io.ReadAll(io.LimitReader(f, room+1))
	if err != nil {
		return nil, err
	}
	if n := int64(len(data)); n > room {
		// Not a regular file, or one that grew since its size was read.
		tooLarge := &TooLargeError{Path: path, Size: n, Limit: b.PerFile, AtLeast: true}
		if n <= b.PerFile {
			tooLarge.Limit, tooLarge.Total = b.Total, true
		}
		return nil, tooLarge
	}
	b.used += int64(len(data))
	return data, nil
}

// ReadSecretFile reads a file whose content goes into one Secret or checks
// one (a Docker config.json, a CA bundle): at most MaxSecretBytes, or a
// *TooLargeError that says so, after reading no more than the limit and a
// byte.
func ReadSecretFile(path string) ([]byte, error) {
	b := &Budget{PerFile: MaxSecretBytes, Total: MaxSecretBytes}
	data, err := b.ReadFile(path)
	var tooLarge *TooLargeError
	if errors.As(err, &tooLarge) {
		tooLarge.Total, tooLarge.Limit, tooLarge.Why = false, MaxSecretBytes, secretLimitWhy
	}
	return data, err
}

// ReadSecretLine reads the first line of r (without its line ending) for a
// Secret, such as a password on stdin: at most MaxSecretBytes, or a
// *TooLargeError naming name, after reading no more than the limit and a
// byte, so that an endless stream (`yes | ...`) cannot make the command
// read on.
func ReadSecretLine(name string, r io.Reader) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSecretBytes+1))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	if int64(len(line)) > MaxSecretBytes || (int64(len(data)) > MaxSecretBytes && !strings.Contains(string(data), "\n")) {
		return "", &TooLargeError{Path: name, Size: int64(len(data)), AtLeast: true, Limit: MaxSecretBytes, Why: secretLimitWhy}
	}
	return strings.TrimRight(line, "\r"), nil
}

// ReadStream reads a whole stream (stdin) of at most limit bytes, or
// returns a *TooLargeError naming name after reading no more than the
// limit and a byte.
func ReadStream(name string, r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &TooLargeError{Path: name, Size: int64(len(data)), AtLeast: true, Limit: limit}
	}
	return data, nil
}
