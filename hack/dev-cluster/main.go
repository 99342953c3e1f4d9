// Command dev-cluster runs the local control plane in the background for
// trying pullsecrets by hand (`make dev-cluster`, `make dev-cluster-down`).
//
//	dev-cluster up [--dir DIR]    start it, wait until it serves, print the KUBECONFIG
//	dev-cluster down [--dir DIR]  stop it
//	dev-cluster run [--dir DIR]   run it in the foreground until SIGINT/SIGTERM
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

const usage = "usage: dev-cluster up|down|run [--dir DIR]"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "dev-cluster: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	flags := flag.NewFlagSet("dev-cluster", flag.ContinueOnError)
	dir := flags.String("dir", ".dev-cluster", "state folder: kubeconfig, logs, pid")
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	s := state{dir: abs}
	switch args[0] {
	case "up":
		return s.up()
	case "down":
		return s.down()
	case "run":
		return s.run()
	default:
		return errors.New(usage)
	}
}

type state struct{ dir string }

func (s state) kubeconfig() string { return filepath.Join(s.dir, "kubeconfig") }
func (s state) pidFile() string    { return filepath.Join(s.dir, "pid") }
func (s state) readyFile() string  { return filepath.Join(s.dir, "ready") }
func (s state) logFile() string    { return filepath.Join(s.dir, "dev-cluster.log") }

// up starts `run` as a detached process and waits for it to be ready.
func (s state) up() error {
	if pid, ok := s.runningPID(); ok {
		fmt.Printf("dev cluster already running (pid %d)\nexport KUBECONFIG=%s\n", pid, s.kubeconfig())
		return nil
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(s.readyFile())
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logFile, err := os.Create(s.logFile())
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(self, "run", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own session: it must outlive this command and the terminal.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start control plane: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.After(5 * time.Minute)
	for {
		if _, err := os.Stat(s.readyFile()); err == nil {
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("control plane exited (log: %s): %w", s.logFile(), err)
		case <-deadline:
			return fmt.Errorf("control plane not ready after 5m; log: %s", s.logFile())
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Printf("dev cluster running (pid %d, logs in %s)\nexport KUBECONFIG=%s\n", cmd.Process.Pid, s.dir, s.kubeconfig())
	return nil
}

// run starts the control plane in the foreground and stops it on a signal.
func (s state) run() error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	logs := filepath.Join(s.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{ControllerManager: true, LogDir: logs})
	if err != nil {
		return err
	}
	defer func() {
		_ = os.Remove(s.readyFile())
		_ = os.Remove(s.pidFile())
		if err := cp.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "dev-cluster: %v\n", err)
		}
	}()
	if err := cp.WriteKubeconfig(s.kubeconfig()); err != nil {
		return err
	}
	if err := os.WriteFile(s.pidFile(), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(s.readyFile(), nil, 0o644); err != nil {
		return err
	}
	fmt.Printf("control plane ready; KUBECONFIG=%s\n", s.kubeconfig())
	<-ctx.Done()
	return nil
}

// down stops a running `run` and waits until it is gone.
func (s state) down() error {
	pid, ok := s.runningPID()
	if !ok {
		fmt.Println("dev cluster not running")
		return nil
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	for range 600 {
		if _, ok := s.runningPID(); !ok {
			fmt.Println("dev cluster stopped")
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pid %d still running after 60s", pid)
}

func (s state) runningPID() (int, bool) {
	raw, err := os.ReadFile(s.pidFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, false
	}
	if syscall.Kill(pid, 0) != nil {
		return 0, false
	}
	return pid, true
}
