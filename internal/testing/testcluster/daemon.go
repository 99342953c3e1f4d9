package testcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/pullsecrets/pullsecrets/internal/testing/controlplane"
)

type daemonOptions struct {
	Options
	// Dir is the state folder shared with the test binary.
	Dir string `json:"dir"`
}

// runDaemon starts the control plane, reports it ready on stdout, and stops it
// when stdin closes (the test binary exited) or on SIGINT/SIGTERM.
func runDaemon(raw string) int {
	var opts daemonOptions
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster daemon: bad options: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	parent := os.Getppid()
	defer func() {
		// The test binary removes the state folder after a clean stop; if it
		// died (we were re-parented), nobody else will.
		if os.Getppid() != parent {
			_ = os.RemoveAll(opts.Dir)
		}
	}()

	logDir := filepath.Join(opts.Dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster daemon: %v\n", err)
		return 1
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{
		ControllerManager: opts.ControllerManager,
		CRDPaths:          opts.CRDPaths,
		LogDir:            logDir,
		APIServerFlags:    opts.APIServerFlags,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "testcluster daemon: %v\n", err)
		return 1
	}
	code := 0
	if err := cp.WriteKubeconfig(filepath.Join(opts.Dir, "kubeconfig")); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster daemon: %v\n", err)
		code = 1
	} else {
		// The PID file lets the leak test check that we are gone.
		_ = os.WriteFile(filepath.Join(opts.Dir, "daemon.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
		fmt.Fprintln(os.Stdout, readyLine)
		stdinClosed := make(chan struct{})
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
		select {
		case <-stdinClosed:
		case <-ctx.Done():
		}
	}
	if err := cp.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testcluster daemon: %v\n", err)
		code = 1
	}
	return code
}
