package readlimit

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func TestBudget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name  string
		sizes []int
		// want is, for each file, "" when read or the error's problem.
		want []string
	}{
		{name: "within both limits", sizes: []int{10, 10, 0}, want: []string{"", "", ""}},
		{name: "a file at the limit", sizes: []int{16}, want: []string{""}},
		{name: "a file over the limit", sizes: []int{17, 3}, want: []string{"not read: it is 0.1 MiB, over the 0.1 MiB limit for one file", ""}},
		{name: "the total reached", sizes: []int{16, 16, 8, 1}, want: []string{"", "", "", "not read: with it the files come to more than 0.1 MiB, the limit for all the files of one command"}},
		{name: "a refused file does not count", sizes: []int{16, 20, 16, 8}, want: []string{"", "not read: it is 0.1 MiB, over the 0.1 MiB limit for one file", "", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &Budget{PerFile: 16, Total: 40}
			for i, size := range tc.sizes {
				p := write(strings.ReplaceAll(tc.name, " ", "-")+string(rune('a'+i)), size)
				data, err := b.ReadFile(p)
				got := ""
				if err != nil {
					var tl *TooLargeError
					if !errors.As(err, &tl) || tl.Path != p || !strings.HasPrefix(err.Error(), p+": ") {
						t.Fatalf("file %d: error %v, want a *TooLargeError naming %s", i, err, p)
					}
					got = tl.Problem()
				} else if len(data) != size {
					t.Errorf("file %d: read %d bytes, want %d", i, len(data), size)
				}
				if got != tc.want[i] {
					t.Errorf("file %d: %q, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestCheckTotal(t *testing.T) {
	t.Parallel()
	b := &Budget{PerFile: 16, Total: 40}
	cases := []struct {
		sizes []int64
		want  string
	}{
		{sizes: []int64{16, 16, 8}},
		{sizes: []int64{16, 16, 100}}, // the large one is refused alone
		{sizes: []int64{16, 16, 9}, want: "a b c: not read: the 3 files come to 0.1 MiB, more than 0.1 MiB, the limit for all the files of one command; name fewer files or folders"},
	}
	for _, tc := range cases {
		err := b.CheckTotal([]string{"a", "b", "c"}, tc.sizes)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckTotal(%v) = %q, want %q", tc.sizes, got, tc.want)
		}
	}
}

// TestStreamsStopAtTheLimit reads a pipe that never ends: the read stops
// one byte past the limit.
func TestStreamsStopAtTheLimit(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("needs a named pipe")
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	writer := make(chan int64, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			writer <- -1
			return
		}
		defer f.Close()
		var n int64
		chunk := make([]byte, 4096)
		for {
			m, err := f.Write(chunk)
			n += int64(m)
			if err != nil {
				writer <- n
				return
			}
		}
	}()
	b := &Budget{PerFile: 1 << 20, Total: 1 << 30}
	_, err := b.ReadFile(fifo)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !tl.AtLeast || tl.Size != 1<<20+1 {
		t.Fatalf("error %v (%+v), want one for a stream over 1 MiB", err, tl)
	}
	if want := "not read: it holds more than the 1 MiB limit for one file"; tl.Problem() != want {
		t.Errorf("problem %q, want %q", tl.Problem(), want)
	}
	if written := <-writer; written > 1<<20+1<<16 {
		t.Errorf("the writer got %d bytes through, want the read to stop near 1 MiB", written)
	}
}

func TestMiB(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{8 << 20: "8 MiB", 8<<20 + 1: "8.1 MiB", 9<<20 + 1<<19: "9.5 MiB", 1: "0.1 MiB", 64 << 20: "64 MiB"} {
		if got := MiB(n); got != want {
			t.Errorf("MiB(%d) = %q, want %q", n, got, want)
		}
	}
}

// endless is a reader that never ends, counting what was read.
type endless struct{ read int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'y'
	}
	e.read += int64(len(p))
	return len(p), nil
}

func TestSecretInputsAreBounded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := filepath.Join(dir, "config.json")
	if err := os.WriteFile(small, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadSecretFile(small); err != nil || string(data) != `{"auths":{}}` {
		t.Fatalf("ReadSecretFile = %q, %v", data, err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, make([]byte, MaxSecretBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSecretFile(big)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Problem() != "not read: it is 1.1 MiB, over the 1 MiB limit (a Secret holds at most 1 MiB)" {
		t.Fatalf("ReadSecretFile(big) = %v", err)
	}
	if runtime.GOOS == "linux" {
		if _, err := ReadSecretFile("/dev/zero"); !errors.As(err, &tl) || !tl.AtLeast {
			t.Fatalf("ReadSecretFile(/dev/zero) = %v, want a *TooLargeError", err)
		}
	}

	if line, err := ReadSecretLine("stdin", strings.NewReader("pa:ss word\r\nrest")); err != nil || line != "pa:ss word" {
		t.Fatalf("ReadSecretLine = %q, %v", line, err)
	}
	if line, err := ReadSecretLine("stdin", strings.NewReader("no newline")); err != nil || line != "no newline" {
		t.Fatalf("ReadSecretLine without a newline = %q, %v", line, err)
	}
	e := &endless{}
	_, err = ReadSecretLine("stdin", e)
	if !errors.As(err, &tl) || tl.Path != "stdin" || !strings.Contains(tl.Problem(), "more than the 1 MiB limit (a Secret holds at most 1 MiB)") {
		t.Fatalf("ReadSecretLine(endless) = %v", err)
	}
	if e.read > MaxSecretBytes+64<<10 {
		t.Errorf("read %d bytes of an endless stream, want about the limit", e.read)
	}

	e = &endless{}
	if _, err := ReadStream("<stdin>", e, 1000); !errors.As(err, &tl) || tl.Path != "<stdin>" {
		t.Fatalf("ReadStream(endless) = %v", err)
	}
	if data, err := ReadStream("<stdin>", strings.NewReader("abc"), 3); err != nil || string(data) != "abc" {
		t.Fatalf("ReadStream = %q, %v", data, err)
	}
}
