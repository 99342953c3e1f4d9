// Command fleet benchmarks the pullsecrets controller over a fleet of
// namespaces on a local control plane; see docs/benchmarks.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pullsecrets/pullsecrets/bench/internal/fleet"
)

func main() {
	// A signal cancels the run, which then stops the controller and the
	// control plane before exiting.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := fleet.NewCommand(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(1)
	}
}
