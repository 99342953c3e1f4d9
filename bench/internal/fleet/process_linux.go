package fleet

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup puts the controller in a process group of its own, so
// that stopping it reaches anything it starts, and a Ctrl-C in the terminal
// reaches the benchmark first, which then stops it in order.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends sig to the process group led by pid.
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

func supported() error { return nil }
