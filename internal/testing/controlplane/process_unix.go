//go:build unix

package controlplane

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the process in its own group, so that a Ctrl-C in the
// terminal reaches us first and we stop it in order.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) error {
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
