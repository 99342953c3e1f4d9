// Command release builds what a tagged release publishes, locally and
// without Docker (make release-snapshot), and keeps the version in the
// repository in one piece (make set-version). See docs/install.md.
//
//	go run ./hack/release version            # the version this checkout builds
//	go run ./hack/release ldflags            # -ldflags that stamp it (make build)
//	go run ./hack/release set-version 0.2.0  # Chart.yaml, config/manager image tag
//	go run ./hack/release snapshot --dist dist
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	if err := runMain(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		os.Exit(1)
	}
}

func runMain(args []string) error {
	flags := flag.NewFlagSet("release", flag.ContinueOnError)
	root := flags.String("root", ".", "repository root")
	dist := flags.String("dist", "dist", "output folder of snapshot (replaced)")
	image := flags.Bool("image", true, "snapshot: build the controller image (multi-arch OCI index)")
	if len(args) == 0 {
		return errors.New("usage: release version|ldflags|set-version VERSION|snapshot [flags]")
	}
	verb := args[0]
	if err := flags.Parse(args[1:]); err != nil {
		return err
	}
	r, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch verb {
	case "version", "ldflags":
		v, g, err := checkoutVersion(r)
		if err != nil {
			return err
		}
		if verb == "version" {
			fmt.Println(v)
		} else {
			fmt.Println(ldflagsOf(stamp(v, g)))
		}
		return nil
	case "set-version":
		if flags.NArg() != 1 {
			return errors.New("usage: release set-version X.Y.Z")
		}
		return setVersion(r, flags.Arg(0))
	case "snapshot":
		d, err := filepath.Abs(*dist)
		if err != nil {
			return err
		}
		return snapshot(ctx, r, d, *image)
	}
	return fmt.Errorf("unknown verb %q", verb)
}
