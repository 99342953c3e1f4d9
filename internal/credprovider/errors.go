package credprovider

import (
	"fmt"
	"strings"
	"time"
)

// Reason says in one word why a plugin run failed. Reasons are stable:
// the controller may turn them into condition reasons.
type Reason string

// Reasons of an Error.
const (
	// ReasonInvalidPlugin: the Plugin or the Request is refused before any run.
	ReasonInvalidPlugin Reason = "InvalidPlugin"
	// ReasonPluginNotFound: no executable of that name in the bin directory.
	ReasonPluginNotFound Reason = "PluginNotFound"
	// ReasonStartFailed: the executable could not be started.
	ReasonStartFailed Reason = "StartFailed"
	// ReasonTimeout: the plugin ran past the timeout; its process group was killed.
	ReasonTimeout Reason = "Timeout"
	// ReasonCanceled: the caller's context ended the run.
	ReasonCanceled Reason = "Canceled"
	// ReasonExited: the plugin exited with a non-zero status.
	ReasonExited Reason = "Exited"
	// ReasonSignaled: the plugin was killed by a signal it did not get from us.
	ReasonSignaled Reason = "Signaled"
	// ReasonOutputTooLarge: stdout or stderr went past its limit; the
	// process group was killed.
	ReasonOutputTooLarge Reason = "OutputTooLarge"
	// ReasonBadResponse: stdout is not a response the kubelet would accept.
	ReasonBadResponse Reason = "BadResponse"
	// ReasonNoCredentials: a valid response without usable credentials.
	ReasonNoCredentials Reason = "NoCredentials"
)

// Error is a failed plugin run. It holds what happened and the sizes of
// the plugin's output, never the output itself nor the request's token.
type Error struct {
	// Plugin is the plugin's name.
	Plugin string
	// Image is the image the plugin was asked about.
	Image  string
	Reason Reason
	// Detail is one sentence on what went wrong, written by this package.
	Detail string
	// ExitCode is the exit status for ReasonExited, else -1.
	ExitCode int
	// Signal names the signal for ReasonSignaled.
	Signal string
	// Elapsed is how long the plugin ran; zero when it never started.
	Elapsed time.Duration
	// StdoutBytes and StderrBytes count what the plugin wrote, also past the limits.
	StdoutBytes, StderrBytes int64

	// cause is only ever a context, os or exec error, which hold no output.
	cause error
}

// Error reads like `credential provider plugin "ecr-credential-provider"
// (image "..."): exited with status 1 after 1.2s (stdout 0 bytes, stderr
// 213 bytes, not shown: plugin output may hold credentials)`.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "credential provider plugin %q", e.Plugin)
	if e.Image != "" {
		fmt.Fprintf(&b, " (image %q)", e.Image)
	}
	b.WriteString(": ")
	b.WriteString(e.Detail)
	if e.Elapsed > 0 {
		fmt.Fprintf(&b, " after %s", e.Elapsed.Round(time.Millisecond))
	}
	if e.StdoutBytes > 0 || e.StderrBytes > 0 {
		fmt.Fprintf(&b, " (stdout %d bytes, stderr %d bytes, not shown: plugin output may hold credentials)", e.StdoutBytes, e.StderrBytes)
	}
	return b.String()
}

// Unwrap gives the context, os or exec error behind a timeout, a
// cancellation, a missing binary or a failed start.
func (e *Error) Unwrap() error { return e.cause }
