package cmdutil

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses, the same for every subcommand.
const (
	// ExitOK: the command did what was asked and found no problem.
	ExitOK = 0
	// ExitProblems: the command failed, or it ran and found problems (for
	// status, doctor and match: something a CI job should stop on).
	ExitProblems = 1
	// ExitUsage: the command line itself is wrong.
	ExitUsage = 2
)

// ExitError carries an exit status. A nil Err means the command has already
// reported everything on its output and only the status remains.
type ExitError struct {
	Code int
	Err  error
	// Hint is printed on its own line after the error.
	Hint string
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ErrProblemsFound ends a command with status 1 after it has printed its
// findings.
var ErrProblemsFound = &ExitError{Code: ExitProblems}

// UsageErrorf reports a wrong command line (status 2).
func UsageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return &ExitError{
		Code: ExitUsage,
		Err:  fmt.Errorf(format, args...),
		Hint: fmt.Sprintf("See '%s --help' for usage.", cmd.CommandPath()),
	}
}

// ExitCode maps an error returned by a command to the process exit status.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Code
	}
	return ExitProblems
}

// PrintError writes err to w as kubectl does ("error: ..."), unless it only
// carries an exit status.
func PrintError(w io.Writer, err error) {
	if err == nil {
		return
	}
	var exit *ExitError
	if errors.As(err, &exit) && exit.Err == nil {
		return
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "error: ") {
		msg = "error: " + msg
	}
	fmt.Fprintln(w, strings.TrimRight(msg, "\n"))
	if exit != nil && exit.Hint != "" {
		fmt.Fprintln(w, exit.Hint)
	}
}
