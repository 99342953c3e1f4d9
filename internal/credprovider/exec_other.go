//go:build !unix

package credprovider

import "os/exec"

// isolate leaves the default: without process groups only the plugin
// itself is killed on timeout.
func isolate(*exec.Cmd) {}

// killGroup kills the plugin process.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}

// signalOf is "" where processes end without signals.
func signalOf(interface{ Sys() any }) string { return "" }
