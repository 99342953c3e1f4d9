// Command image builds the pullsecrets-controller OCI image without a
// container engine or a base image (make image): a static controller binary,
// users, CA certificates and optional credential providers, assembled from
// scratch with go-containerregistry. Two builds of the same source with the
// same Go toolchain and SOURCE_DATE_EPOCH give the same digest. See
// docs/image.md.
//
// It prints the image's digest on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("image", flag.ContinueOnError)
	opts := options{}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		epoch = "0"
	}
	flags.StringVar(&opts.root, "root", ".", "repository root")
	flags.StringVar(&opts.ref, "ref", "ghcr.io/pullsecrets/pullsecrets-controller:dev", "image name and tag")
	flags.StringVar(&opts.layoutDir, "layout", "bin/image", "OCI image layout folder to write (replaced); empty: none")
	flags.StringVar(&opts.tarball, "tarball", "", "docker-loadable archive to write; empty: none")
	flags.StringVar(&opts.arch, "arch", "amd64", "target architecture (amd64, arm64), or several (amd64,arm64) for one OCI index")
	flags.StringVar(&opts.providers, "credential-providers", os.Getenv("CREDENTIAL_PROVIDERS"),
		"folder of static credential provider binaries to put under /credential-providers/ (env CREDENTIAL_PROVIDERS), or arch=folder,... for several architectures; empty: none")
	flags.StringVar(&epoch, "source-date-epoch", epoch, "seconds since 1970 for every timestamp in the image (env SOURCE_DATE_EPOCH)")
	flags.StringVar(&opts.version, "version", "dev", "org.opencontainers.image.version label")
	flags.StringVar(&opts.revision, "revision", "", "org.opencontainers.image.revision label (git commit); empty: none")
	flags.StringVar(&opts.ldflags, "go-ldflags", "", "more -ldflags for the controller build, e.g. the version stamp of `go run ./hack/release ldflags`")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", flags.Args())
	}
	var err error
	if opts.epoch, err = strconv.ParseInt(epoch, 10, 64); err != nil || opts.epoch < 0 {
		return fmt.Errorf("source date epoch %q: want seconds since 1970", epoch)
	}
	for _, p := range []*string{&opts.root, &opts.layoutDir, &opts.tarball, &opts.providers} {
		if *p != "" && !strings.Contains(*p, "=") {
			if *p, err = filepath.Abs(*p); err != nil {
				return err
			}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	archs, err := parseArchs(opts.arch)
	if err != nil {
		return err
	}
	if len(archs) > 1 {
		// The release's multi-arch image: an OCI index in the layout.
		if opts.tarball != "" {
			return fmt.Errorf("--tarball holds one architecture: drop it, or give one --arch")
		}
		providers, err := parseProviders(opts.providers, archs)
		if err != nil {
			return err
		}
		res, err := buildIndex(ctx, opts, archs, providers)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "built %s (index of %d images)\n", opts.ref, len(archs))
		for _, a := range archs {
			fmt.Fprintf(os.Stderr, "  linux/%s: %s\n", a, res.platforms[a])
		}
		if opts.layoutDir != "" {
			fmt.Fprintf(os.Stderr, "  OCI layout: %s\n", opts.layoutDir)
		}
		fmt.Println(res.digest)
		return nil
	}
	res, err := build(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "built %s (linux/%s), %.1f MiB compressed\n", opts.ref, opts.arch, float64(res.size)/(1<<20))
	if opts.layoutDir != "" {
		fmt.Fprintf(os.Stderr, "  OCI layout: %s\n", opts.layoutDir)
	}
	if opts.tarball != "" {
		fmt.Fprintf(os.Stderr, "  archive:    %s\n", opts.tarball)
	}
	fmt.Println(res.digest)
	return nil
}
