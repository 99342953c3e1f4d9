//go:build !linux

package fleet

import (
	"errors"
	"os/exec"
	"syscall"
)

func setProcessGroup(*exec.Cmd) {}

func signalGroup(int, syscall.Signal) error { return supported() }

// supported says why the benchmark cannot run here: it reads the
// controller's memory and CPU time from /proc.
func supported() error { return errors.New("the fleet benchmark runs on Linux only: it reads /proc") }
