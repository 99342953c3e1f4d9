package cmdutil

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress counts work done across many objects. It draws a bar on stderr
// only when stderr is a terminal, so that logs and pipes stay clean and
// tests see nothing.
type Progress interface {
	// Add marks n more items done.
	Add(n int)
	// Done clears the bar; lines printed after it start on a clean line.
	Done()
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// NewProgress returns a progress bar of total items on errOut, or one that
// draws nothing when errOut is not a terminal or the work is small.
func NewProgress(errOut io.Writer, total int, description string) Progress {
	if total < 2 || !IsTerminal(errOut) {
		return noProgress{}
	}
	return &bar{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(errOut),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(100_000_000), // redraw at most every 100ms
	)}
}

type noProgress struct{}

func (noProgress) Add(int) {}
func (noProgress) Done()   {}

type bar struct{ bar *progressbar.ProgressBar }

func (b *bar) Add(n int) { _ = b.bar.Add(n) }
func (b *bar) Done()     { _ = b.bar.Finish(); _ = b.bar.Clear() }
