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
